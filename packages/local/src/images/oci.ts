/**
 * Reading and checking OCI image archives: a tar of an OCI image layout (`oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`), as `buildah push ... oci-archive:<file>` writes it.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { readTar, writeTar } from './tar.ts';
import type { TarEntry, TarInput } from './tar.ts';

/** An OCI content descriptor. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** `index.json` of an image layout. */
export interface OciIndex {
  schemaVersion: number;
  manifests: OciDescriptor[];
}

/** An image manifest. */
export interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an image configuration that Trellis checks. */
export interface OciImageConfig {
  architecture: string;
  os: string;
  created?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown>;
    Labels?: Record<string, string>;
  };
  rootfs: { type: string; diff_ids: string[] };
}

/** An OCI archive, checked: every blob it names is present and hashes to its digest. */
export interface OciImage {
  /** The manifest digest: what `repo@sha256:...` pins and what a registry serves it under. */
  digest: string;
  index: OciIndex;
  manifest: OciManifest;
  /** The manifest blob exactly as stored (its sha256 is {@link OciImage.digest}). */
  manifestBytes: Buffer;
  config: OciImageConfig;
  /** A blob's bytes by digest. */
  blob(digest: string): Buffer;
  /** The members of one layer (gunzipped when compressed). */
  layer(index: number): TarEntry[];
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blobPath(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return `blobs/sha256/${m[1]}`;
}

function json<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new Error(`${what} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Read an OCI archive holding one image and check it: `oci-layout` version 1.0.0, one manifest in
 * `index.json`, and the manifest, config and every layer present with the sha256 and size their
 * descriptors give. Throws naming the first thing that is wrong.
 */
export function readOciArchive(bytes: Buffer): OciImage {
  const files = new Map<string, Buffer>();
  for (const e of readTar(bytes)) if (e.type === 'file') files.set(e.name, e.data);
  const get = (path: string): Buffer => {
    const f = files.get(path);
    if (!f) throw new Error(`OCI archive has no ${path}`);
    return f;
  };
  const layout = json<{ imageLayoutVersion?: string }>(get('oci-layout'), 'oci-layout');
  if (layout.imageLayoutVersion !== '1.0.0')
    throw new Error(`oci-layout: imageLayoutVersion is ${layout.imageLayoutVersion}, not 1.0.0`);
  const index = json<OciIndex>(get('index.json'), 'index.json');
  if (index.schemaVersion !== 2 || !Array.isArray(index.manifests))
    throw new Error('index.json: not an OCI image index (schemaVersion 2 with manifests)');
  if (index.manifests.length !== 1)
    throw new Error(`index.json: expected one manifest, found ${index.manifests.length}`);
  const desc = index.manifests[0] as OciDescriptor;
  if (desc.mediaType !== MANIFEST)
    throw new Error(`index.json: manifest media type is ${desc.mediaType}, not ${MANIFEST}`);
  const checked = (d: OciDescriptor, what: string): Buffer => {
    const b = get(blobPath(d.digest));
    const actual = sha256Digest(b);
    if (actual !== d.digest) throw new Error(`${what} ${d.digest}: its blob hashes to ${actual}`);
    if (b.length !== d.size)
      throw new Error(`${what} ${d.digest}: size is ${b.length}, descriptor says ${d.size}`);
    return b;
  };
  const manifestBytes = checked(desc, 'manifest');
  const manifest = json<OciManifest>(manifestBytes, `manifest ${desc.digest}`);
  if (manifest.schemaVersion !== 2 || !manifest.config || !Array.isArray(manifest.layers))
    throw new Error(`manifest ${desc.digest}: not an OCI image manifest`);
  const config = json<OciImageConfig>(checked(manifest.config, 'config'), 'image config');
  manifest.layers.forEach((l, i) => checked(l, `layer ${i}`));
  if (config.rootfs?.diff_ids?.length !== manifest.layers.length)
    throw new Error('image config: rootfs.diff_ids does not list one diff id per layer');
  return {
    digest: desc.digest,
    index,
    manifest,
    manifestBytes,
    config,
    blob: (d) => get(blobPath(d)),
    layer: (i) => {
      const l = manifest.layers[i];
      if (!l) throw new Error(`no layer ${i}`);
      const b = get(blobPath(l.digest));
      const tar = l.mediaType.endsWith('+gzip') ? gunzipSync(b) : b;
      const diffId = sha256Digest(tar);
      if (diffId !== config.rootfs.diff_ids[i])
        throw new Error(`layer ${i}: uncompressed digest ${diffId} is not diff_ids[${i}]`);
      return readTar(tar);
    },
  };
}

/** {@link readOciArchive} of a file. */
export function readOciArchiveFile(path: string): OciImage {
  return readOciArchive(readFileSync(path));
}

/** True when an image's configured user is not root (uid 0 or the name `root`), with or without a group. */
export function runsAsNonRoot(config: OciImageConfig): boolean {
  const user = (config.config?.User ?? '').split(':')[0] ?? '';
  return user !== '' && user !== '0' && user !== 'root';
}

/**
 * A minimal, valid single-layer OCI archive (for tests of code that reads build output): one layer
 * holding `files`, an image config with `user`, and the layout around them.
 */
export function writeOciArchive(opts: { files: TarInput[]; user: string }): {
  archive: Buffer;
  digest: string;
} {
  const layer = writeTar(opts.files);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { User: opts.user },
      rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] },
    }),
  );
  const desc = (mediaType: string, b: Buffer): OciDescriptor => ({
    mediaType,
    digest: sha256Digest(b),
    size: b.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: desc('application/vnd.oci.image.config.v1+json', config),
      layers: [desc('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  );
  const digest = sha256Digest(manifest);
  const blob = (b: Buffer): TarInput => ({ name: blobPath(sha256Digest(b)), data: b });
  const archive = writeTar([
    { name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    {
      name: 'index.json',
      data: JSON.stringify({ schemaVersion: 2, manifests: [desc(MANIFEST, manifest)] }),
    },
    { name: 'blobs', dir: true },
    { name: 'blobs/sha256', dir: true },
    blob(manifest),
    blob(config),
    blob(layer),
  ]);
  return { archive, digest };
}
