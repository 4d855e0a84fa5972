/**
 * Resolve many Debian packages with two apt-cache calls instead of two per package: on images without
 * pkgcache.bin every apt-cache call rebuilds its cache (about 2 s of CPU on a busy 2-core machine), so
 * resolving one package at a time cost ~45 s for Prometheus's eleven packages. Every Debian install of
 * the toolchain resolves through here.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkDeb, DEBIAN, type DebianPackage } from './debian.ts';
import { CommandError, FetchError } from './errors.ts';
import { run } from './exec.ts';

/** Candidates from `apt-cache policy a b c` output, by package name; `(none)` is left out. */
export function parsePolicyCandidates(out: string): Map<string, string> {
  const found = new Map<string, string>();
  let current: string | null = null;
  for (const line of out.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) current = head[1] ?? null;
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line)?.[1];
    if (current && cand && cand !== '(none)') found.set(current, cand);
  }
  return found;
}

/** sha256 of each stanza of `apt-cache show a=1 b=2` output, keyed `name=version`. */
export function parseShowSha256(out: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const stanza of out.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)$/m.exec(stanza)?.[1];
    const version = /^Version:\s*(\S+)$/m.exec(stanza)?.[1];
    const sha = /^SHA256:\s*([a-f0-9]{64})$/m.exec(stanza)?.[1];
    if (name && version && sha) found.set(`${name}=${version}`, sha);
  }
  return found;
}

/**
 * Each package at an exact version (when given) or its current candidate, with the sha256 the apt
 * index lists; throws a FetchError naming every package apt does not offer.
 */
export async function resolveMany(
  wanted: readonly { name: string; version?: string }[],
): Promise<DebianPackage[]> {
  const open = wanted.filter((w) => !w.version).map((w) => w.name);
  const candidates =
    open.length > 0
      ? parsePolicyCandidates(
          await run('apt-cache', ['policy', ...open], {
            what: 'apt-cache policy',
            timeoutMs: 60_000,
          }),
        )
      : new Map<string, string>();
  const pinned = wanted.map((w) => ({
    name: w.name,
    version: w.version ?? candidates.get(w.name),
  }));
  const none = pinned.filter((p) => !p.version).map((p) => p.name);
  if (none.length > 0)
    throw new FetchError(
      none.join(', '),
      DEBIAN,
      'apt-cache has no candidate (run apt-get update, on Debian bookworm)',
    );
  const specs = pinned.map((p) => `${p.name}=${p.version ?? ''}`);
  // apt-cache show exits non-zero when any one version is unknown; the message names it.
  const shas = parseShowSha256(
    await run('apt-cache', ['show', ...specs], { what: 'apt-cache show', timeoutMs: 60_000 }),
  );
  return specs.map((spec, i) => {
    const sha256 = shas.get(spec);
    if (!sha256) throw new Error(`apt-cache show ${spec} lists no SHA256`);
    return { name: wanted[i]?.name ?? spec, version: spec.slice(spec.indexOf('=') + 1), sha256 };
  });
}

/**
 * Fetch the exact `.deb` of every package into `dir` with one `apt-get download`, each checked against
 * the sha256 the apt index gave; returns their paths in the order given.
 */
export async function downloadMany(pkgs: readonly DebianPackage[], dir: string): Promise<string[]> {
  try {
    await run('apt-get', ['download', ...pkgs.map((p) => `${p.name}=${p.version}`)], {
      what: 'apt-get download',
      cwd: dir,
      timeoutMs: 600_000,
    });
  } catch (err) {
    const out = err instanceof CommandError ? err.output : String(err);
    const what = pkgs.map((p) => `${p.name} ${p.version}`).join(', ');
    throw new FetchError(`${what} (.deb)`, DEBIAN, out.split('\n').slice(-4).join(' ').trim());
  }
  const files = readdirSync(dir);
  return pkgs.map((p) => {
    // apt-get names files name_version_arch.deb, with the epoch colon escaped
    const prefix = `${p.name}_${p.version.replace(/:/g, '%3a')}_`;
    const file = files.find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    if (!file) throw new Error(`apt-get download wrote no ${prefix}*.deb`);
    checkDeb(join(dir, file), p);
    return join(dir, file);
  });
}

/** The current candidate of each named package with its checksum (see {@link resolveMany}). */
export function resolvePackages(names: readonly string[]): Promise<DebianPackage[]> {
  return resolveMany(names.map((name) => ({ name })));
}
