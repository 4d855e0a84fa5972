/**
 * The build record `./trellis images` writes next to each OCI archive (`.trellis/images/<image>.json`),
 * and the check that a stack config runs before it deploys a digest taken from one.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readOciArchiveFile } from './oci.ts';

/** What `./trellis images` records for one image it built. */
export interface BuildRecord {
  /** The image name, e.g. `orders-api` (the service) or `node-base`. */
  image: string;
  /** The manifest digest, `sha256:<hex>`: sha256 of the manifest blob in {@link BuildRecord.archive}. */
  digest: string;
  /** The OCI archive, a file name in the same directory. */
  archive: string;
  /** The image config's digest. */
  config: string;
  /** The digest of the base image it was built `FROM`, when it has one. */
  base?: string;
  /** The user the image runs as (`uid:gid`). */
  user: string;
  /** The builder, e.g. `buildah 1.28.2+ds1-3+deb12u1+b3`. */
  builder: string;
  /** The timestamp given to the build (`SOURCE_DATE_EPOCH`): file times and `created`. */
  sourceDateEpoch: number;
}

const IMAGE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Where the record of `image` lives in a build output directory. */
export function recordPath(dir: string, image: string): string {
  return join(dir, `${image}.json`);
}

/** Write the record of an image into the build output directory. */
export function writeBuildRecord(dir: string, record: BuildRecord): string {
  const path = recordPath(dir, record.image);
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`);
  return path;
}

function problemsOf(r: Record<string, unknown>, image: string): string[] {
  const p: string[] = [];
  if (r.image !== image) p.push(`image is ${JSON.stringify(r.image)}, not "${image}"`);
  if (typeof r.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(r.digest))
    p.push('digest is not sha256:<64 hex>');
  if (typeof r.archive !== 'string' || r.archive !== basename(r.archive) || r.archive === '')
    p.push('archive is not a file name');
  if (typeof r.sourceDateEpoch !== 'number') p.push('sourceDateEpoch is not a number');
  return p;
}

/**
 * Read the record of `image` from a build output directory and prove that its digest is that of the
 * image beside it: the OCI archive it names must hold one manifest whose blob hashes to the recorded
 * digest (with every blob intact). So a digest deployed from a record is one our build produced, not
 * a value typed into a file. Throws an Error whose message says what is wrong, for the caller to
 * prefix with the config key.
 */
export function readBuildRecord(dir: string, image: string): BuildRecord {
  if (!IMAGE_NAME.test(image)) throw new Error(`"${image}" is not an image name`);
  const path = recordPath(dir, image);
  if (!existsSync(path)) throw new Error(`no build output ${path}; run ./trellis images`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new Error(`${path} is not JSON; run ./trellis images`);
  }
  const problems =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? problemsOf(raw as Record<string, unknown>, image)
      : ['not an object'];
  if (problems.length > 0)
    throw new Error(
      `${path} is not a build record of ./trellis images (${problems.join('; ')}); run ./trellis images`,
    );
  const record = raw as BuildRecord;
  const archive = join(dir, record.archive);
  if (!existsSync(archive))
    throw new Error(`${path} names ${archive}, which does not exist; run ./trellis images`);
  let digest: string;
  try {
    digest = readOciArchiveFile(archive).digest;
  } catch (err) {
    throw new Error(`${archive} is not a valid OCI archive: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (digest !== record.digest)
    throw new Error(
      `${path} says ${record.digest}, but the manifest in ${record.archive} is ${digest}; run ./trellis images`,
    );
  return record;
}
