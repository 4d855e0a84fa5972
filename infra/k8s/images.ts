/**
 * Where a stack's service images come from, and which digests it may deploy (shared by infra/k8s and
 * infra/aws). A digest cannot be told from a made-up one by looking at it, so a stack takes a digest
 * only with its provenance:
 *
 * - `image: { build: <name> }`: the digest `./trellis images` recorded in `<buildDir>/<name>.json`,
 *   accepted only if the OCI archive beside the record holds a manifest that hashes to it (so it was
 *   produced by our build). The image is pulled as `<trellis:images.registry>/<name>@<digest>`, where CI
 *   has pushed the archive (docs/environments.md).
 * - `image: { registry: <repository>@sha256:<hex> }`: an image the team's registry serves, declared as
 *   such; the repository must be inside `trellis:images.registry`, and the reference must not be an
 *   obvious placeholder ({@link referencePlaceholder}, {@link digestPlaceholder}).
 *
 * A bare string, the form that let made-up digests in, is refused.
 */
import { resolve } from 'node:path';
import { readBuildRecord } from '@trellis/local/images';
import type { BuildRecord } from '@trellis/local/images';
import { z } from 'zod';

// Registry host (with a dot or a port, or localhost, so it never means Docker Hub implicitly), then path
// components as the OCI distribution spec allows them.
const host = String.raw`(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?:\d+)(?::\d+)?`;
const component = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const repository = new RegExp(`^${host}(?:/${component})*$`);
const digestReference = new RegExp(
  String.raw`^(${host}(?:/${component})+)(?::[\w][\w.-]{0,127})?@sha256:([a-f0-9]{64})$`,
);

// Words and template syntax that mark a value someone meant to fill in later.
const placeholderText =
  /[<>{}$]|\b(?:todo|fixme|tbd|x{3,}|changeme|change-me|placeholder|replace-?me|dummy)\b/i;

/**
 * Why a reference is an obvious placeholder (template syntax `<...>`, `{{...}}`, `${...}`, or one of
 * the words TODO, FIXME, TBD, XXX, changeme, placeholder, replace-me, dummy), or null.
 */
export function referencePlaceholder(reference: string): string | null {
  const m = placeholderText.exec(reference);
  return m ? `is a placeholder ("${m[0]}"), not an image reference` : null;
}

/** The longest run of digits stepping by exactly +1 or -1, every `stride`-th digit. */
function longestRun(values: number[]): {
  length: number;
  start: number;
  step: number;
  stride: number;
} {
  let best = { length: 0, start: 0, step: 1, stride: 1 };
  for (const stride of [1, 2])
    for (const step of [1, -1])
      for (let s = 0; s < values.length; s++) {
        let n = 1;
        for (let i = s; i + stride < values.length; i += stride) {
          if ((values[i + stride] as number) - (values[i] as number) !== step) break;
          n++;
        }
        if (n > best.length) best = { length: n, start: s, step, stride };
      }
  return best;
}

/** Digits counting by one over this many places (at stride 1 or 2) mark a made-up digest. */
const maxRun = 8;
/** A SHA-256 digest shows fewer distinct hex digits than this with probability about 1e-12. */
const minDistinct = 10;

/**
 * Why 64 hex digits are not a plausible SHA-256 digest, or null. Precisely, a digest is refused when:
 * 1. it is periodic with a period of 32 or less (all zeros, `deadbeef` repeated, `0123…f` × 4);
 * 2. it uses fewer than 10 distinct hex digits;
 * 3. it holds more than 8 digits that count up or down by one, consecutive or at every other place
 *    (`…9f8e7d6c5b4a…`, the shape of a hand-typed value).
 * For a real digest each of these has a probability below 1e-7, so none rejects a built image in
 * practice; all three reject what people type when they make one up.
 */
export function digestPlaceholder(hex: string): string | null {
  for (let p = 1; p <= 32; p++) {
    let periodic = true;
    for (let i = 0; i + p < hex.length && periodic; i++) periodic = hex[i] === hex[i + p];
    if (periodic) return `digest repeats "${hex.slice(0, p)}": a placeholder, not a SHA-256 digest`;
  }
  const distinct = new Set(hex).size;
  if (distinct < minDistinct)
    return `digest uses only ${distinct} distinct hex digits: a made-up value, not a SHA-256 digest`;
  const run = longestRun([...hex].map((c) => Number.parseInt(c, 16)));
  if (run.length > maxRun) {
    const digits = Array.from({ length: run.length }, (_, k) => hex[run.start + k * run.stride]);
    return `digest counts ${run.step > 0 ? 'up' : 'down'} by one over ${run.length} digits (${digits.join('')}${run.stride === 2 ? ', every other digit' : ''}): a made-up value, not a SHA-256 digest`;
  }
  return null;
}

/** Where `./trellis images` writes: `<repo>/.trellis/images`. */
export const defaultBuildDir = resolve(import.meta.dirname, '../../.trellis/images');

/** `trellis:images`: the team registry, and where `./trellis images` wrote its output. */
export const imagesSchema = z.strictObject({
  /** The team's registry (host and path) that every image of the stack is pulled from. */
  registry: z
    .string()
    .regex(repository, 'must be a registry host and path, e.g. ghcr.io/trellis-platform')
    .superRefine((value, ctx) => {
      const p = referencePlaceholder(value);
      if (p) ctx.addIssue({ code: 'custom', message: p });
    }),
  /** The build output directory, relative to the project. @default <repo>/.trellis/images */
  buildDir: z.string().min(1).optional(),
});

/** A validated `trellis:images`. */
export type ImagesConfig = z.output<typeof imagesSchema>;

/** A service's deployment as the Platform takes it: the image reference resolved. */
export interface ResolvedService {
  image: string;
  replicas?: number;
}

/** The image of one service, checked; `errors` gets `trellis:services.<name>.image...: ...` lines. */
function resolveOne(
  name: string,
  spec: unknown,
  images: ImagesConfig,
  buildDir: string,
  readRecord: (dir: string, image: string) => BuildRecord,
  errors: string[],
): string | undefined {
  const key = `trellis:services.${name}.image`;
  const isObject = typeof spec === 'object' && spec !== null && !Array.isArray(spec);
  const keys = isObject ? Object.keys(spec) : [];
  if (!isObject || keys.length !== 1 || !['build', 'registry'].includes(keys[0] as string)) {
    errors.push(
      `${key}: must be { build: <image> } (the digest ./trellis images recorded) or { registry: <repository>@sha256:<digest> } (an image in trellis:images.registry); a bare reference does not say where its digest came from`,
    );
    return undefined;
  }
  const value = (spec as Record<string, unknown>)[keys[0] as string];
  if ('build' in spec) {
    if (typeof value !== 'string' || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(value)) {
      errors.push(`${key}.build: must be an image name of ./trellis images, e.g. "${name}"`);
      return undefined;
    }
    try {
      const record = readRecord(buildDir, value);
      return `${images.registry}/${value}@${record.digest}`;
    } catch (err) {
      errors.push(`${key}.build: ${(err as Error).message}`);
      return undefined;
    }
  }
  if (typeof value !== 'string') {
    errors.push(`${key}.registry: must be a string <repository>@sha256:<digest>`);
    return undefined;
  }
  const text = referencePlaceholder(value);
  if (text) {
    errors.push(`${key}.registry: ${text}`);
    return undefined;
  }
  const m = digestReference.exec(value);
  if (!m) {
    errors.push(`${key}.registry: must be pinned by digest (<repository>@sha256:<64 hex>)`);
    return undefined;
  }
  const [, repo, hex] = m as unknown as [string, string, string];
  if (!repo.startsWith(`${images.registry}/`)) {
    errors.push(
      `${key}.registry: ${repo} is not in the team registry trellis:images.registry (${images.registry})`,
    );
    return undefined;
  }
  const made = digestPlaceholder(hex);
  if (made) {
    errors.push(`${key}.registry: ${made}`);
    return undefined;
  }
  return value;
}

/**
 * Resolve each service's `image` to the reference the cluster pulls, or throw `invalid stack config:`
 * with one line per bad service. `projectDir` anchors a relative `trellis:images.buildDir`;
 * `defaultBuildDir` (default `<repo>/.trellis/images`) is used when it is not set.
 */
export function resolveImages(
  services: Record<string, { image?: unknown; replicas?: number | undefined }>,
  images: ImagesConfig,
  dirs: { projectDir: string; defaultBuildDir?: string },
  readRecord: (dir: string, image: string) => BuildRecord = readBuildRecord,
): Record<string, ResolvedService> {
  const buildDir = images.buildDir
    ? resolve(dirs.projectDir, images.buildDir)
    : (dirs.defaultBuildDir ?? defaultBuildDir);
  const errors: string[] = [];
  const out: Record<string, ResolvedService> = {};
  for (const [name, s] of Object.entries(services)) {
    const image = resolveOne(name, s.image, images, buildDir, readRecord, errors);
    if (image !== undefined)
      out[name] = { image, ...(s.replicas !== undefined ? { replicas: s.replicas } : {}) };
  }
  if (errors.length > 0) throw new Error(`invalid stack config:\n${errors.join('\n')}`);
  return out;
}
