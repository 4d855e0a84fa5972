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
import { aptCandidate, DEBIAN, unpackDebs, type DebianPackage } from './debian.ts';
import { downloadMany, resolveMany } from './debian-batch.ts';
import { FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';
import { progress } from './log.ts';
import { upstreamVersion } from './nginx.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

// Debian bookworm ships 2.42.0 (as 2.42.0+ds-5+deb12u1). Like nginx, the Debian revision is taken from
// apt at install time, so a refreshed apt index brings security revisions.
const PINNED = '2.42.0';
const MINIMUM = '2.42.0';
const NAME = 'prometheus';
// The static files of the classic UI and of the console templates (prom.lib loads rickshaw, d3,
// jquery, popper.js, bootstrap4 and the glyphicons) are symlinks into /usr/share/javascript and
// /usr/share/fonts-glyphicons, which these packages fill; unpacked into the same tree, the relative
// links resolve inside the install dir. libjs-moment-timezone (214 MiB of time-zone data, only for the
// classic graph page's date picker) is left out on purpose.
const WEB_ASSET_PACKAGES = [
  'libjs-rickshaw',
  'libjs-d3',
  'libjs-jquery',
  'libjs-popper.js',
  'libjs-bootstrap4',
  'fonts-glyphicons-halflings',
  'libjs-jquery-hotkeys',
  'libjs-moment',
  'libjs-mustache',
  'libjs-eonasdan-bootstrap-datetimepicker',
] as const;

/** Where the files of one Prometheus install are (all inside the tool cache). */
export interface PrometheusLayout {
  /** The install dir, `<cache>/tools/prometheus/<debian version>`. */
  home: string;
  prometheus: string;
  promtool: string;
  /**
   * `--web.console.libraries`: `menu.lib` and `prom.lib`. Debian ships them as examples under
   * /usr/share/doc (its /etc/prometheus/console_libraries holds only a README).
   */
  consoleLibraries: string;
  /** `--web.console.templates`: Debian's example consoles (node*.html, prometheus*.html). */
  consoles: string;
  /** `--web.local-assets`: the classic UI's templates and static files. */
  webAssets: string;
}

/** The layout of an install dir (from `dpkg -x`, so the Debian paths under it). */
export function prometheusLayout(home: string): PrometheusLayout {
  const examples = join(home, 'usr', 'share', 'doc', 'prometheus', 'examples');
  return {
    home,
    prometheus: join(home, 'usr', 'bin', 'prometheus'),
    promtool: join(home, 'usr', 'bin', 'promtool'),
    consoleLibraries: join(examples, 'console_libraries'),
    consoles: join(examples, 'consoles'),
    webAssets: join(home, 'usr', 'share', 'prometheus', 'web'),
  };
}

/** The release in `prometheus --version` / `promtool --version` output: `version 2.42.0+ds` -> `2.42.0`. */
export function parsePrometheusVersion(out: string): string | null {
  return /\bversion (\d+\.\d+\.\d+)/.exec(out)?.[1] ?? null;
}

/** The upstream release of a Debian version: `2.42.0+ds-5+deb12u1` -> `2.42.0`. */
export function prometheusRelease(debianVersion: string): string {
  return upstreamVersion(debianVersion).replace(/\+.*$/, '');
}

/** Completed installs in the cache, newest Debian version first. */
function installedVersions(): string[] {
  const root = join(cacheRoot(), 'tools', NAME);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => !v.includes('.staging-') && !v.endsWith('.lock') && isInstalled(join(root, v)))
    .filter((v) => compareVersions(prometheusRelease(v), MINIMUM) >= 0)
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

/** The files every install must have; returns the missing ones, relative to the install dir. */
export function missingFiles(layout: PrometheusLayout): string[] {
  const need = [
    layout.prometheus,
    layout.promtool,
    join(layout.consoleLibraries, 'prom.lib'),
    join(layout.consoleLibraries, 'menu.lib'),
    join(layout.consoles, 'prometheus.html'),
    join(layout.webAssets, 'templates', '_base.html'),
    // resolves only when the libjs packages are unpacked next to prometheus
    join(layout.webAssets, 'static', 'rickshaw', 'rickshaw.min.js'),
  ];
  return need.filter((p) => !existsSync(p)).map((p) => p.slice(layout.home.length + 1));
}

async function install(version: string, staging: string): Promise<void> {
  const pkgs: DebianPackage[] = await resolveMany([
    { name: NAME, version },
    ...WEB_ASSET_PACKAGES.map((name) => ({ name })),
  ]);
  progress(`downloading prometheus ${version} and ${WEB_ASSET_PACKAGES.length} web-asset packages`);
  const debs = join(staging, '.debs');
  mkdirSync(debs);
  await unpackDebs(await downloadMany(pkgs, debs), staging);
  rmSync(debs, { recursive: true, force: true });
  const layout = prometheusLayout(staging);
  const missing = missingFiles(layout);
  if (missing.length > 0)
    throw new Error(`prometheus ${version}: the Debian packages lack ${missing.join(', ')}`);
  for (const bin of [layout.prometheus, layout.promtool]) {
    const out = await run(bin, ['--version'], { what: `${bin} --version`, timeoutMs: 30_000 });
    const found = parsePrometheusVersion(out);
    if (found !== prometheusRelease(version))
      throw new Error(`${bin} reports ${found ?? out.trim()}, expected ${version}`);
  }
  writeFileSync(join(staging, 'install.json'), `${JSON.stringify({ packages: pkgs }, null, 2)}\n`);
}

// apt-cache costs 0.5–2 s of CPU per call on images without pkgcache.bin (see nginx.ts), so the
// candidate is looked up at most once a day.
const APT_CHECK_TTL_MS = 24 * 3600_000;

function stampFile(): string {
  return join(cacheRoot(), 'tools', NAME, '.apt-candidate');
}

function recentCandidate(): string | null {
  try {
    if (Date.now() - statSync(stampFile()).mtimeMs > APT_CHECK_TTL_MS) return null;
    return readFileSync(stampFile(), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** The apt candidate, running `apt-get update` once when the index is empty and we are root. */
async function candidate(): Promise<string | null> {
  const c = await aptCandidate(NAME);
  if (c || process.getuid?.() !== 0) return c;
  progress('apt has no prometheus candidate; running apt-get update');
  try {
    await run('apt-get', ['update'], { what: 'apt-get update', timeoutMs: 300_000 });
  } catch (err) {
    throw new FetchError('the apt package index', DEBIAN, (err as Error).message);
  }
  return aptCandidate(NAME);
}

async function ensureInstall(): Promise<string> {
  const known = recentCandidate();
  if (known && isInstalled(toolDir(NAME, known))) return toolDir(NAME, known);
  const version = await candidate();
  // Offline or no apt (not Debian): use what is already installed.
  const have = installedVersions()[0];
  if (!version && have) return toolDir(NAME, have);
  if (!version) {
    throw new FetchError(
      `prometheus ${PINNED}`,
      DEBIAN,
      'apt-cache has no candidate for package prometheus (run apt-get update, on Debian bookworm)',
    );
  }
  mkdirSync(dirname(stampFile()), { recursive: true });
  writeFileSync(stampFile(), version);
  if (compareVersions(prometheusRelease(version), MINIMUM) < 0)
    throw new Error(`prometheus: apt offers ${version}, below the minimum ${MINIMUM}`);
  const dir = toolDir(NAME, version);
  await installAtomically(dir, (staging) => install(version, staging));
  return dir;
}

let resolved: PrometheusLayout | null = null;

/** Install Prometheus when missing and return where its binaries, consoles and assets are. */
export async function ensurePrometheus(): Promise<PrometheusLayout> {
  if (resolved && isInstalled(resolved.home)) return resolved;
  resolved = prometheusLayout(await ensureInstall());
  return resolved;
}

/** The newest installed layout, installing nothing; null when there is none. */
export function installedPrometheus(): PrometheusLayout | null {
  const have = installedVersions()[0];
  return have ? prometheusLayout(toolDir(NAME, have)) : null;
}

/**
 * Prometheus and promtool from Debian's `prometheus` package, unpacked per user with `apt-get download`
 * + `dpkg -x` (sha256-checked against the apt index) into the tool cache, with the JavaScript packages
 * its console templates load: no root, never touches /etc (the harness passes every path as a flag).
 */
export const prometheus: Tool = {
  name: NAME,
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${DEBIAN} prometheus ${PINNED} (Debian bookworm) + libjs-* web assets`,
  async ensure(): Promise<string> {
    return (await ensurePrometheus()).prometheus;
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const layout = installedPrometheus();
    if (!layout)
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    const missing = missingFiles(layout);
    const outs = await Promise.all(
      [layout.prometheus, layout.promtool].map((b) => tryRun(b, ['--version'])),
    );
    const found = outs[0] ? parsePrometheusVersion(outs[0]) : null;
    const runs = found !== null && outs.every((o) => o && parsePrometheusVersion(o) === found);
    const problem =
      missing.length > 0
        ? `missing ${missing.join(', ')}`
        : !runs
          ? 'prometheus or promtool --version failed'
          : compareVersions(found, MINIMUM) < 0
            ? `version ${found} is below ${MINIMUM}`
            : undefined;
    return {
      ...base,
      found,
      location: layout.prometheus,
      runs,
      ...(problem ? { problem } : {}),
    };
  },
};
