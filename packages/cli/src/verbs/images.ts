/**
 * `images [service...] [--update-base] [--node VERSION] [--out DIR]`: build the services' OCI images
 * with buildah, no daemon and no root, into `.trellis/images/<name>.oci.tar` with a build record
 * `<name>.json` each, and print their digests. Usage errors exit 2.
 */
import { resolve } from 'node:path';
import { buildImages, listServices } from '@trellis/local/images/build';
import { progress } from '@trellis/local/toolchain';

const ROOT = resolve(import.meta.dirname, '../../../..');

const usage = `Usage:
  ./trellis images [service...] [--out DIR] [--update-base [--node VERSION]]

Builds packages/services/node-base and each service's Containerfile with buildah (no daemon, no root)
into DIR (default .trellis/images): <name>.oci.tar, an OCI image archive, and <name>.json, its build
record, which stack configs read with \`image: { build: <name> }\`. Prints each image's digest.

  --update-base   re-pin node-base to apt's current Debian packages (and --node VERSION of Node.js):
                  rewrites packages/services/node-base/base.lock.json and the services' FROM lines.
`;

function usageError(message: string): number {
  process.stderr.write(`trellis images: ${message}\n\n${usage}`);
  return 2;
}

/** The `images` verb. */
export async function images(args: string[]): Promise<number> {
  const services: string[] = [];
  let out: string | undefined;
  let updateBase = false;
  let nodeVersion: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--help' || a === '-h') {
      process.stdout.write(usage);
      return 0;
    } else if (a === '--update-base') updateBase = true;
    else if (a === '--out' || a === '--node') {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) return usageError(`${a} needs a value`);
      if (a === '--out') out = resolve(v);
      else nodeVersion = v;
    } else if (a.startsWith('--')) return usageError(`unknown option ${a}`);
    else services.push(a);
  }
  if (nodeVersion !== undefined && !updateBase) return usageError('--node goes with --update-base');
  if (nodeVersion !== undefined && !/^\d+\.\d+\.\d+$/.test(nodeVersion))
    return usageError(`--node must be a version x.y.z, got ${nodeVersion}`);
  const known = listServices(ROOT);
  for (const s of services)
    if (!known.includes(s)) return usageError(`unknown service ${s} (have ${known.join(', ')})`);
  const started = Date.now();
  const built = await buildImages({
    root: ROOT,
    ...(out !== undefined ? { out } : {}),
    ...(services.length > 0 ? { services } : {}),
    updateBase,
    ...(nodeVersion !== undefined ? { nodeVersion } : {}),
    log: progress,
  });
  const width = Math.max(...built.map((b) => b.record.image.length));
  for (const b of built) {
    const mb = (b.bytes / 1e6).toFixed(1);
    process.stdout.write(
      `${b.record.image.padEnd(width)}  ${b.record.digest}  ${mb} MB  ${b.seconds.toFixed(1)} s  ${b.archive}\n`,
    );
  }
  progress(`images built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
