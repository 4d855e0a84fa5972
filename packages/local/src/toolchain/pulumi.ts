import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot, ensureSymlink, installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { findGo, GO_PROXY, goRun, lockOf } from './go.ts';
import { run, tryRun } from './exec.ts';
import { progress } from './log.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

const PINNED = '3.259.0';
// The oldest CLI we accept from PATH; our language host speaks the 3.259.0 protocol, which is additive.
const MINIMUM = '3.225.0';
const CLI_PACKAGE = 'github.com/pulumi/pulumi/pkg/v3/cmd/pulumi';
// Official builds stamp the version here (`pulumi version` is empty otherwise).
const VERSION_VAR = 'github.com/pulumi/pulumi/sdk/v3/go/common/version.Version';
const HOST_BINARIES = ['pulumi-language-nodejs', 'pulumi-resource-pulumi-nodejs'] as const;
// The Node.js that ./trellis installs into the cache (NODE_VERSION in the trellis script).
const NODE_VERSION = '24.21.0';
const NODE_MINIMUM = '22.18.0'; // first Node.js that strips TypeScript types without a flag

/** packages/local/go: the Go tools module with the pinned Pulumi CLI and our language host. */
export const toolsModuleDir = fileURLToPath(new URL('../../go/', import.meta.url));

/** Parse `pulumi version` output (`v3.259.0`). */
export function parsePulumiVersion(out: string): string | null {
  return /^v?(\d+\.\d+\.\d+)/m.exec(out.trim())?.[1] ?? null;
}

/**
 * A hash of the tools module's sources (go.mod, go.sum and *.go without tests), so that a change to the language host
 * installs a fresh build next to the old one instead of being masked by the finished-install marker.
 */
export function hostSourceHash(moduleDir = toolsModuleDir): string {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/^go\.(mod|sum)$/.test(entry.name) || /(?<!_test)\.go$/.test(entry.name))
        files.push(p);
    }
  };
  walk(moduleDir);
  const h = createHash('sha256');
  for (const f of files.sort())
    h.update(relative(moduleDir, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 12);
}

function cliDir(): string {
  return toolDir('pulumi', PINNED);
}

function hostDir(): string {
  return toolDir('pulumi-nodejs-host', `${PINNED}-${hostSourceHash()}`);
}

async function buildCli(staging: string): Promise<void> {
  const go = await findGo();
  progress(
    `building Pulumi ${PINNED} from source with Go ${go.version} (${CLI_PACKAGE}@v${PINNED} from ${GO_PROXY}); ` +
      'a cold build takes 10-30 min, later ones reuse the Go caches',
  );
  mkdirSync(join(staging, 'bin'));
  const out = join(staging, 'bin', 'pulumi');
  await goRun(
    [
      'build',
      '-trimpath',
      '-mod=readonly',
      '-ldflags',
      `-X ${VERSION_VAR}=v${PINNED}`,
      '-o',
      out,
      CLI_PACKAGE,
    ],
    {
      go,
      cwd: toolsModuleDir,
      what: `building Pulumi ${PINNED}`,
      timeoutMs: 90 * 60_000,
      lock: lockOf(cliDir()),
    },
  );
  const found = parsePulumiVersion(
    await run(out, ['version'], { what: 'pulumi version', timeoutMs: 60_000 }),
  );
  if (found !== PINNED)
    throw new Error(`Pulumi: the built CLI reports ${found ?? 'no version'}, expected ${PINNED}`);
}

async function buildHost(staging: string, dir: string): Promise<void> {
  const go = await findGo();
  progress(
    `building the Trellis Node.js language host and dynamic-provider plugin (${toolsModuleDir})`,
  );
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  await goRun(
    [
      'build',
      '-trimpath',
      '-mod=readonly',
      '-o',
      `${bin}/`,
      ...HOST_BINARIES.map((b) => `./cmd/${b}`),
    ],
    {
      go,
      cwd: toolsModuleDir,
      what: 'building pulumi-language-nodejs',
      timeoutMs: 30 * 60_000,
      lock: lockOf(dir),
    },
  );
  const probe = await probeLanguageHost(join(bin, 'pulumi-language-nodejs'));
  if (probe !== null) throw new Error(`Pulumi language host: ${probe}`);
}

/**
 * Start the language host the way the engine does and wait for the port on its first stdout line.
 * Returns null when it works, else the reason.
 */
export function probeLanguageHost(bin: string, timeoutMs = 15_000): Promise<string | null> {
  return new Promise((resolve) => {
    // The engine address is only used once a program runs; any address will do for the probe.
    const child = spawn(bin, ['127.0.0.1:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const finish = (result: string | null): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(result);
    };
    const timer = setTimeout(
      () => finish(`${bin} printed no port within ${timeoutMs / 1000} s`),
      timeoutMs,
    );
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n')[0] ?? '';
      if (out.includes('\n'))
        finish(/^\d+$/.test(line.trim()) ? null : `${bin} printed "${line}" instead of a port`);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => finish(`cannot start ${bin}: ${e.message}`));
    child.on('exit', (code) =>
      finish(`${bin} exited with ${code} before printing a port: ${err.trim()}`),
    );
  });
}

interface FoundCli {
  bin: string;
  version: string | null;
}

/** The first `pulumi` on PATH that is not ours, with its version. */
async function pulumiOnPath(): Promise<FoundCli | null> {
  const ours = join(cacheRoot(), 'tools');
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || dir.startsWith(ours)) continue;
    const bin = join(dir, 'pulumi');
    try {
      if (!statSync(bin).isFile()) continue;
    } catch {
      continue;
    }
    const out = await tryRun(bin, ['version'], {
      env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: 'true' },
    });
    return { bin, version: out ? parsePulumiVersion(out) : null };
  }
  return null;
}

function usable(found: FoundCli | null): found is FoundCli & { version: string } {
  return found !== null && found.version !== null && compareVersions(found.version, MINIMUM) >= 0;
}

/**
 * Put the language host and the dynamic-provider plugin next to our `pulumi`, as symlinks into the host's
 * install dir. The engine prefers plugins on PATH but warns when they differ from the ones next to the CLI;
 * with both the same path it stays quiet.
 */
function linkHost(cliBin: string, hostBin: string): void {
  for (const name of HOST_BINARIES) {
    ensureSymlink(join(hostBin, name), join(cliBin, name));
  }
}

interface Resolved {
  /** The `pulumi` to run. */
  bin: string;
  /** The dir holding our language host and dynamic-provider plugin. */
  hostBin: string;
  version: string;
  external: boolean;
}

async function resolve(): Promise<Resolved> {
  const host = hostDir();
  if (!isInstalled(host)) await installAtomically(host, (staging) => buildHost(staging, host));
  const hostBin = join(host, 'bin');
  const onPath = await pulumiOnPath();
  if (usable(onPath)) return { bin: onPath.bin, hostBin, version: onPath.version, external: true };
  const cli = cliDir();
  if (!isInstalled(cli)) {
    if (onPath)
      progress(
        `pulumi on PATH (${onPath.bin}, ${onPath.version ?? 'unknown version'}) is older than ${MINIMUM}`,
      );
    await installAtomically(cli, buildCli);
  }
  linkHost(join(cli, 'bin'), hostBin);
  return { bin: join(cli, 'bin', 'pulumi'), hostBin, version: PINNED, external: false };
}

/** The bin dir of the Node.js that runs Pulumi programs: the cached Node 24, else the one running us. */
export function nodeBinDir(): string {
  const cached = join(cacheRoot(), 'node', NODE_VERSION, 'bin');
  if (existsSync(join(cached, 'node'))) return cached;
  if (compareVersions(process.versions.node, NODE_MINIMUM) >= 0) return dirname(process.execPath);
  throw new Error(
    `Pulumi programs need Node.js ${NODE_MINIMUM} or newer (this is ${process.versions.node}); run ./trellis to install Node.js ${NODE_VERSION}`,
  );
}

/** Options for {@link pulumiEnv}. */
export interface PulumiEnvOptions {
  /**
   * PULUMI_HOME: where Pulumi keeps its login, plugins and workspace settings.
   * @default `<cache>/pulumi-home`
   */
  home?: string;
}

/**
 * Install Pulumi if needed and return the `pulumi` to run with the environment it needs: PATH with our
 * Node.js language host, the dynamic-provider plugin and Node.js; no update check; no plugin downloads (the
 * registries reachable here do not serve them, and a clear error beats a hang); PULUMI_HOME in the cache.
 * Callers add their own backend (`pulumi login file://...`) and PULUMI_CONFIG_PASSPHRASE.
 */
export async function pulumiEnv(
  opts: PulumiEnvOptions = {},
): Promise<{ bin: string; env: NodeJS.ProcessEnv }> {
  const p = await resolve();
  const home = opts.home ?? join(cacheRoot(), 'pulumi-home');
  mkdirSync(home, { recursive: true });
  // Our CLI has the host linked next to it (see linkHost). An external CLI gets our host dir ahead of its
  // own, so that it runs Trellis programs with the host tested here (the engine then warns that it uses the
  // plugin from PATH, which is what we want).
  const first = p.external ? [p.hostBin, dirname(p.bin)] : [dirname(p.bin)];
  const path = [...first, nodeBinDir(), process.env.PATH ?? ''].filter((d) => d !== '');
  return {
    bin: p.bin,
    env: {
      ...process.env,
      PATH: path.join(delimiter),
      PULUMI_HOME: home,
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    },
  };
}

/**
 * The Pulumi CLI: reused from PATH when it is at least {@link MINIMUM}, else built from source (Pulumi publishes
 * its binaries only on GitHub and get.pulumi.com, which are not reachable here). Either way it runs Trellis
 * programs with our own Node.js language host from packages/local/go.
 */
export const pulumi: Tool = {
  name: 'pulumi',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${CLI_PACKAGE}@v${PINNED} (built from source) + Trellis language host (packages/local/go)`,
  async ensure(): Promise<string> {
    return (await resolve()).bin;
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const host = hostDir();
    const hostProblem = isInstalled(host)
      ? await probeLanguageHost(join(host, 'bin', 'pulumi-language-nodejs'))
      : 'the Trellis Node.js language host is not built';
    const onPath = await pulumiOnPath();
    let cli: FoundCli | null = usable(onPath) ? onPath : null;
    if (cli === null && isInstalled(cliDir())) {
      const bin = join(cliDir(), 'bin', 'pulumi');
      const out = await tryRun(bin, ['version'], {
        env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: 'true' },
      });
      cli = { bin, version: out ? parsePulumiVersion(out) : null };
    }
    if (cli === null) {
      const why = onPath
        ? `pulumi on PATH is ${onPath.version ?? 'of unknown version'}, below ${MINIMUM}; `
        : '';
      return { ...base, found: null, location: null, runs: false, problem: `${why}not installed` };
    }
    const problem = cli.version === null ? `${cli.bin} version failed` : (hostProblem ?? undefined);
    return {
      ...base,
      found: cli.version,
      location: cli.bin,
      runs: cli.version !== null && hostProblem === null,
      ...(problem ? { problem } : {}),
    };
  },
};
