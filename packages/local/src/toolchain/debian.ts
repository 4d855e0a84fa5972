/**
 * Debian packages without root: versions and checksums from the local apt index, `.deb` files with
 * `apt-get download` into a per-user cache, contents with `dpkg -x` (no maintainer scripts, no dpkg
 * database). Used for buildah and for the services' base image.
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

/** The sha256 of `pkg=version`'s `.deb` as the apt index lists it. */
export async function aptSha256(pkg: string, version: string): Promise<string> {
  const out = await run('apt-cache', ['show', `${pkg}=${version}`], {
    what: `apt-cache show ${pkg}=${version}`,
    timeoutMs: 30_000,
  });
  const sha = /^SHA256:\s*([a-f0-9]{64})$/m.exec(out)?.[1];
  if (!sha) throw new Error(`apt-cache show ${pkg}=${version} lists no SHA256`);
  return sha;
}

/** The current candidate of each package with its checksum; throws naming any without one. */
export async function resolvePackages(names: readonly string[]): Promise<DebianPackage[]> {
  const out: DebianPackage[] = [];
  for (const name of names) {
    const version = await aptCandidate(name);
    if (!version)
      throw new FetchError(
        name,
        DEBIAN,
        'apt-cache has no candidate (run apt-get update, on Debian bookworm)',
      );
    out.push({ name, version, sha256: await aptSha256(name, version) });
  }
  return out;
}

function debCacheDir(): string {
  return join(cacheRoot(), 'debs');
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
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
    const actual = sha256File(path);
    if (actual !== p.sha256) {
      rmSync(path, { force: true });
      throw new Error(
        `${p.name} ${p.version}: the .deb has sha256 ${actual}, expected ${p.sha256}`,
      );
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
