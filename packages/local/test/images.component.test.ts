// `./trellis images` for real: buildah from the toolchain builds node-base and orders-api from their
// Containerfiles with no daemon, and the OCI archive is checked as a registry or a kubelet would see it,
// then run from its own root filesystem.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBaseLock } from '../src/images/base.ts';
import { buildImages } from '../src/images/build.ts';
import type { BuiltImage } from '../src/images/build.ts';
import { readBuildRecord } from '../src/images/record.ts';
import { readOciArchiveFile, runsAsNonRoot } from '../src/images/oci.ts';
import type { OciImage } from '../src/images/oci.ts';
import type { TarEntry } from '../src/images/tar.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let out = '';
let built: BuiltImage[] = [];
let seconds = 0;
let image: OciImage;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'trellis-images-'));
  const t0 = Date.now();
  built = await buildImages({ root: ROOT, out, services: ['orders-api'] });
  seconds = (Date.now() - t0) / 1000;
  image = readOciArchiveFile(join(out, 'orders-api.oci.tar'));
}, 900_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

/** Every file of the image, later layers over earlier ones (no whiteouts: nothing is ever deleted). */
function filesOf(img: OciImage): Map<string, TarEntry> {
  const files = new Map<string, TarEntry>();
  img.manifest.layers.forEach((_, i) => {
    for (const e of img.layer(i)) files.set(e.name, e);
  });
  return files;
}

function runIn(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin' }, timeout: 60_000 },
      (err, _stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stderr });
      },
    );
  });
}

describe('./trellis images (buildah, no daemon)', () => {
  it('writes an OCI layout whose index names one manifest, and the manifest digest is its sha256', () => {
    const archive = readOciArchiveFile(join(out, 'orders-api.oci.tar'));
    expect(archive.index.schemaVersion).toBe(2);
    expect(archive.index.manifests).toHaveLength(1);
    const [desc] = archive.index.manifests;
    expect(desc?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    // The digest is computed from the content, here again from the blob's bytes.
    const hex = createHash('sha256')
      .update(archive.blob(desc?.digest ?? ''))
      .digest('hex');
    expect(desc?.digest).toBe(`sha256:${hex}`);
    expect(desc?.size).toBe(archive.manifestBytes.length);
    const record = built.find((b) => b.record.image === 'orders-api')?.record;
    expect(record?.digest).toBe(desc?.digest);
    // What a stack config reads with `image: { build: orders-api }`.
    expect(readBuildRecord(out, 'orders-api')).toEqual(record);
  });

  it('runs as a non-root user, with the entry point and port of the service', () => {
    expect(image.config.config?.User).toBe('65532:65532');
    expect(runsAsNonRoot(image.config)).toBe(true);
    expect(image.config.config?.Entrypoint).toEqual(['/usr/local/bin/node', '/app/server.mjs']);
    expect(image.config.config?.WorkingDir).toBe('/app');
    expect(Object.keys(image.config.config?.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    expect(image.config.os).toBe('linux');
  });

  it('is built on node-base by the digest the lock pins, and node-base rebuilt to that digest', () => {
    const lock = readBaseLock(ROOT);
    const base = built.find((b) => b.record.image === 'node-base');
    expect(base?.record.digest).toBe(lock.digest);
    expect(image.manifest.annotations?.['org.opencontainers.image.base.digest']).toBe(lock.digest);
    const baseImage = readOciArchiveFile(join(out, 'node-base.oci.tar'));
    // The service adds one layer on top of the base's, unchanged.
    expect(image.manifest.layers.slice(0, -1)).toEqual(baseImage.manifest.layers);
    expect(image.manifest.layers).toHaveLength(baseImage.manifest.layers.length + 1);
  });

  it('holds no shell and nothing the service could write: root-owned, /tmp the only writable dir', () => {
    const files = filesOf(image);
    expect(files.get('app/server.mjs')?.type).toBe('file');
    expect(files.get('usr/local/bin/node')?.mode).toBe(0o755);
    for (const sh of ['bin/sh', 'bin/bash', 'usr/bin/sh', 'bin/busybox'])
      expect(files.has(sh)).toBe(false);
    const writable = [...files.values()]
      .filter((e) => e.type !== 'symlink' && (e.mode & 0o022) !== 0)
      .map((e) => `${e.name} ${e.mode.toString(8)}`);
    expect(writable).toEqual(['tmp 1777']);
    expect([...files.values()].filter((e) => e.uid !== 0 || e.gid !== 0)).toEqual([]);
    expect(files.get('etc/passwd')?.data.toString()).toContain('nonroot:x:65532:65532:');
  });

  it("starts from its own root filesystem: the image's Node.js and libraries run the bundle", async () => {
    const rootfs = join(out, 'rootfs');
    for (const [name, e] of filesOf(image)) {
      const p = join(rootfs, name);
      if (e.type === 'dir') mkdirSync(p, { recursive: true });
      else if (e.type === 'symlink') {
        mkdirSync(dirname(p), { recursive: true });
        symlinkSync(e.linkname, p);
      } else if (e.type === 'file') {
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, e.data);
        chmodSync(p, e.mode);
      }
    }
    // chroot into it in a user namespace of our own, with only PATH set: the service's config
    // check must refuse to start (exit 2) naming the first missing variable. That proves the binary,
    // its shared libraries and the bundle are all in the image.
    const r = await runIn('unshare', [
      '--user',
      '--map-root-user',
      '--',
      'chroot',
      rootfs,
      '/usr/local/bin/node',
      '/app/server.mjs',
    ]);
    expect(r.stderr).toContain(
      'orders-api: invalid configuration: CASSANDRA_CONTACT_POINTS is required',
    );
    expect(r.code).toBe(2);
  });

  it(`reports the build time (node-base and orders-api, cold buildah store)`, () => {
    // Recorded in docs/toolchain.md; the bound only catches a build that hangs or loops.
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(600);
    process.stderr.write(
      `images: ${built.map((b) => `${b.record.image} ${b.seconds.toFixed(1)} s ${(b.bytes / 1e6).toFixed(1)} MB`).join(', ')}; total ${seconds.toFixed(1)} s\n`,
    );
    expect(readFileSync(join(out, 'node-base.json'), 'utf8')).toContain('"builder": "buildah ');
  });
});
