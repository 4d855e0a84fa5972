import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot, installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { CommandError, FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';
import { progress } from './log.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

// Debian bookworm ships 1.22.1 (plus security revisions such as 1.22.1-9+deb12u11). The Debian
// revision is taken from apt at install time, so a refreshed apt index brings the security fixes.
const PINNED = '1.22.1';
const MINIMUM = '1.22.1';
const REGISTRY = 'Debian apt';
// Since 1.22.1-6 the `nginx` package holds the binary (nginx-core/-light are transitional);
// nginx-common brings mime.types.
const PACKAGES = ['nginx', 'nginx-common'] as const;
// Modules the ingress needs; checked in `nginx -V`.
const REQUIRED_MODULES = ['--with-http_ssl_module', '--with-http_v2_module'] as const;

/** The upstream part of a Debian version: `1.22.1-9+deb12u11` -> `1.22.1`. */
export function upstreamVersion(debianVersion: string): string {
  return debianVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}

/** The binary inside an install dir. */
export function nginxBinaryIn(dir: string): string {
  return join(dir, 'usr', 'sbin', 'nginx');
}

/** `mime.types` inside an install dir (from nginx-common). */
export function nginxMimeTypesIn(dir: string): string {
  return join(dir, 'etc', 'nginx', 'mime.types');
}

/** The apt candidate for the `nginx` package, from the local apt index (no network). */
async function aptCandidate(): Promise<string | null> {
  const out = await tryRun('apt-cache', ['policy', 'nginx'], { timeoutMs: 30_000 });
  const v = out ? /Candidate:\s*(\S+)/.exec(out)?.[1] : undefined;
  return v && v !== '(none)' ? v : null;
}

/** Completed installs in the cache, newest Debian version first. */
function installedVersions(): string[] {
  const root = join(cacheRoot(), 'tools', 'nginx');
  if (!existsSync(root)) return [];
  return (
    readdirSync(root)
      .filter((v) => !v.includes('.staging-') && !v.endsWith('.lock') && isInstalled(join(root, v)))
      .filter(
        (v) => upstreamVersion(v) === PINNED || compareVersions(upstreamVersion(v), MINIMUM) >= 0,
      )
      // numeric collation orders deb12u11 after deb12u9
      .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))
  );
}

/** Missing shared libraries (`ldd` "not found" lines), by soname. */
async function missingLibraries(bin: string): Promise<string[]> {
  const out = await run('ldd', [bin], { what: `ldd ${bin}`, timeoutMs: 30_000 });
  return out
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s+/)[0] ?? l.trim());
}

/** The required configure flags (TLS, HTTP/2) missing from `nginx -V` output. */
export function missingModules(versionOutput: string): string[] {
  return REQUIRED_MODULES.filter((m) => !versionOutput.includes(m));
}

async function install(version: string, staging: string): Promise<void> {
  const debs = join(staging, 'debs');
  mkdirSync(debs);
  progress(`downloading nginx ${version} (${PACKAGES.join(', ')}) with apt-get download`);
  try {
    await run('apt-get', ['download', ...PACKAGES.map((p) => `${p}=${version}`)], {
      what: 'apt-get download nginx',
      cwd: debs,
      timeoutMs: 300_000,
    });
  } catch (err) {
    const out = err instanceof CommandError ? err.output : String(err);
    throw new FetchError(
      `nginx ${version} (${PACKAGES.join(', ')} .deb)`,
      REGISTRY,
      out.split('\n').slice(-4).join(' ').trim(),
    );
  }
  for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
    // dpkg -x unpacks without running maintainer scripts or touching the dpkg database: no root.
    await run('dpkg', ['-x', join(debs, deb), staging], {
      what: `dpkg -x ${deb}`,
      timeoutMs: 120_000,
    });
  }
  rmSync(debs, { recursive: true, force: true });
  const bin = nginxBinaryIn(staging);
  if (!existsSync(bin))
    throw new Error(`nginx ${version}: the Debian package has no usr/sbin/nginx`);
  const missing = await missingLibraries(bin);
  if (missing.length > 0) {
    throw new Error(
      `nginx ${version} needs shared libraries that are not installed: ${missing.join(', ')} ` +
        '(Debian packages libssl3, libpcre2-8-0, zlib1g, libcrypt1 provide them)',
    );
  }
  const v = await run(bin, ['-V'], { what: 'nginx -V', timeoutMs: 30_000 });
  const lacking = missingModules(v);
  if (lacking.length > 0)
    throw new Error(`nginx ${version} is built without ${lacking.join(', ')}`);
}

/** Install the candidate (running `apt-get update` once if the index is empty and we are root). */
async function resolveVersion(): Promise<string | null> {
  const c = await aptCandidate();
  if (c) return c;
  if (process.getuid?.() === 0) {
    progress('apt has no nginx candidate; running apt-get update');
    try {
      await run('apt-get', ['update'], { what: 'apt-get update', timeoutMs: 300_000 });
    } catch (err) {
      throw new FetchError('the apt package index', REGISTRY, (err as Error).message);
    }
    return aptCandidate();
  }
  return null;
}

let resolved: string | null = null;

// apt-cache rebuilds its package cache on every call where images disable pkgcache.bin (Debian
// container images do), costing 0.5–2 s of CPU; so the candidate is looked up at most once a day.
const APT_CHECK_TTL_MS = 24 * 3600_000;

function stampFile(): string {
  return join(cacheRoot(), 'tools', 'nginx', '.apt-candidate');
}

function recentCandidate(): string | null {
  try {
    if (Date.now() - statSync(stampFile()).mtimeMs > APT_CHECK_TTL_MS) return null;
    return readFileSync(stampFile(), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

async function ensureNginx(): Promise<string> {
  const known = recentCandidate();
  if (known && isInstalled(toolDir('nginx', known))) return nginxBinaryIn(toolDir('nginx', known));
  const candidate = await aptCandidate();
  if (candidate) {
    mkdirSync(dirname(stampFile()), { recursive: true });
    writeFileSync(stampFile(), candidate);
    if (isInstalled(toolDir('nginx', candidate))) return nginxBinaryIn(toolDir('nginx', candidate));
  }
  // Offline or no apt (not Debian): use what is already installed.
  const have = installedVersions()[0];
  if (!candidate && have) return nginxBinaryIn(toolDir('nginx', have));
  const version = candidate ?? (await resolveVersion());
  if (!version) {
    throw new FetchError(
      `nginx ${PINNED}`,
      REGISTRY,
      'apt-cache has no candidate for package nginx (run apt-get update, or install on Debian bookworm)',
    );
  }
  if (compareVersions(upstreamVersion(version), MINIMUM) < 0) {
    throw new Error(`nginx: apt offers ${version}, below the minimum ${MINIMUM}`);
  }
  const dir = toolDir('nginx', version);
  await installAtomically(dir, (staging) => install(version, staging));
  return nginxBinaryIn(dir);
}

/**
 * nginx from Debian, unpacked per user with `apt-get download` + `dpkg -x` into the tool cache, so it
 * needs no root and never touches /etc or /var (the harness runs it with `-p`, `-c`, `-e`).
 */
export const nginx: Tool = {
  name: 'nginx',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${REGISTRY} nginx ${PINNED} (Debian bookworm)`,
  async ensure(): Promise<string> {
    if (resolved && existsSync(resolved)) return resolved;
    resolved = await ensureNginx();
    return resolved;
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const have = installedVersions()[0];
    if (!have)
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    const bin = nginxBinaryIn(toolDir('nginx', have));
    const out = await tryRun(bin, ['-V']);
    if (!out)
      return {
        ...base,
        found: have,
        location: bin,
        runs: false,
        problem: 'nginx -V failed (missing shared libraries? try ldd)',
      };
    const lacking = missingModules(out);
    return {
      ...base,
      found: have,
      location: bin,
      runs: true,
      ...(lacking.length > 0 ? { problem: `built without ${lacking.join(', ')}` } : {}),
    };
  },
};
