/**
 * Debian packages without root: versions and checksums from the local apt index, `.deb` files with
 * `apt-get download` into a per-user cache, contents with `dpkg -x` (no maintainer scripts, no dpkg
 * database). Used for buildah, Prometheus and the services' base image; packages are resolved in one
 * batch by `resolveMany` (debian-batch.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from './cache.ts';
import { CommandError, FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';

/** Where the packages come from, for errors. */
export const DEBIAN = 'Debian apt';

/** One exact Debian package: what a lock file records and `apt-get download` fetches. */
export interface DebianPackage {
  name: string;
  /** The full Debian version, e.g. `2.36-9+deb12u13`. */
  version: string;
  /** sha256 of the `.deb`, from the apt index. */
  sha256: string;
}

/** The candidate version of a package in the local apt index, or null (no network). */
export async function aptCandidate(pkg: string): Promise<string | null> {
  const out = await tryRun('apt-cache', ['policy', pkg], { timeoutMs: 30_000 });
  const v = out ? /Candidate:\s*(\S+)/.exec(out)?.[1] : undefined;
  return v && v !== '(none)' ? v : null;
}

function debCacheDir(): string {
  return join(cacheRoot(), 'debs');
}

/** Throws naming the package unless the `.deb` at `path` has the sha256 the apt index gave. */
export function checkDeb(path: string, p: DebianPackage): void {
  const actual = createHash('sha256').update(readFileSync(path)).digest('hex');
  if (actual !== p.sha256)
    throw new Error(`${p.name} ${p.version}: the .deb has sha256 ${actual}, expected ${p.sha256}`);
}

/**
 * The `.deb` of each exact package, from the per-user cache or fetched with `apt-get download`, its
 * sha256 checked against the one given. A version apt no longer offers fails with a FetchError that
 * names it.
 */
export async function downloadPackages(pkgs: readonly DebianPackage[]): Promise<string[]> {
  const dir = debCacheDir();
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const p of pkgs) {
    const path = join(
      dir,
      `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.sha256.slice(0, 16)}.deb`,
    );
    if (!existsSync(path)) {
      const tmp = join(dir, `.download-${process.pid}-${p.name}`);
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp);
      try {
        await run('apt-get', ['download', `${p.name}=${p.version}`], {
          what: `apt-get download ${p.name}=${p.version}`,
          cwd: tmp,
          timeoutMs: 300_000,
        });
        const [deb] = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
        if (!deb) throw new Error('apt-get download wrote no .deb');
        renameSync(join(tmp, deb), path);
      } catch (err) {
        const out = err instanceof CommandError ? err.output : String(err);
        throw new FetchError(
          `${p.name} ${p.version} (.deb)`,
          DEBIAN,
          out.split('\n').slice(-4).join(' ').trim(),
        );
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
    try {
      checkDeb(path, p);
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    }
    paths.push(path);
  }
  return paths;
}

/** Unpack `.deb` files into `dir` (`dpkg -x`: files only, no scripts, no root). */
export async function unpackDebs(debs: readonly string[], dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const deb of debs) {
    await run('dpkg', ['-x', deb, dir], { what: `dpkg -x ${deb}`, timeoutMs: 120_000 });
  }
}
