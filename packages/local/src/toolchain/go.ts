/** Building pinned tools from source with the Go toolchain (Pulumi and k6 ship no binaries we can fetch). */
import { existsSync, utimesSync } from 'node:fs';
import { CommandError, FetchError } from './errors.ts';
import { run } from './exec.ts';
import { progress } from './log.ts';
import { compareVersions } from './spec.ts';

/** How errors name the registry Go modules come from. */
export const GO_PROXY = 'the Go module proxy';

/** Lowest Go that builds the tools module (`go` line of packages/local/go/go.mod, set by Pulumi 3.259.0). */
export const GO_MINIMUM = '1.25.11';

export interface GoToolchain {
  bin: string;
  version: string;
}

/** Find a Go toolchain new enough to build our tools: `go` on PATH, then `/usr/local/go/bin/go`. */
export async function findGo(): Promise<GoToolchain> {
  const seen: string[] = [];
  for (const bin of ['go', '/usr/local/go/bin/go']) {
    if (bin.startsWith('/') && !existsSync(bin)) continue;
    let out: string;
    try {
      out = await run(bin, ['env', 'GOVERSION'], {
        what: `${bin} env GOVERSION`,
        timeoutMs: 30_000,
      });
    } catch {
      continue;
    }
    const version = /go(\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1];
    if (version && compareVersions(version, GO_MINIMUM) >= 0) return { bin, version };
    seen.push(`${bin} is ${out.trim()}`);
  }
  throw new Error(
    `Go ${GO_MINIMUM} or newer is needed to build Pulumi and k6 from source ` +
      `(${seen.length > 0 ? seen.join('; ') : 'no go on PATH or in /usr/local/go'}); install it from https://go.dev/dl`,
  );
}

/**
 * The environment for `go`: the user's, with a local toolchain only (no toolchain download), no cgo (static
 * binaries, no C compiler needed) and no VCS stamping. GOPROXY, GOMODCACHE and GOCACHE stay as the user set
 * them, so module downloads and compiled packages survive between installs.
 */
export function goEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
    GOFLAGS: '-buildvcs=false',
    ...extra,
  };
}

/** The module, URL and status of the first failed module download in `go` output, if any. */
export function parseGoFetchFailure(output: string): { module: string; detail: string } | null {
  const m = /(\S+@v[^\s:]+): reading (\S+): ((?:403|404|410)[^\n]*)/.exec(output);
  if (!m) return null;
  return { module: m[1] ?? '', detail: `${m[2] ?? ''}: ${m[3] ?? ''}`.trim() };
}

export interface GoRunOptions {
  go: GoToolchain;
  cwd: string;
  /** Human description, e.g. `building Pulumi 3.259.0`. */
  what: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /**
   * An install lock dir (`<toolDir>.lock`) to keep fresh while the build runs: installAtomically treats a lock
   * older than 30 minutes as stale, and a cold Pulumi build on two cores can take about that long.
   */
  lock?: string;
}

/**
 * Run `go <args>` with a progress line every 30 s. A module the proxy refuses becomes a FetchError naming the
 * module and the Go module proxy; other failures stay CommandErrors with the tail of go's output.
 */
export async function goRun(args: readonly string[], opts: GoRunOptions): Promise<string> {
  const started = Date.now();
  const ticker = setInterval(() => {
    const mins = ((Date.now() - started) / 60_000).toFixed(1);
    progress(`  ${opts.what}: still running (${mins} min)`);
    if (opts.lock && existsSync(opts.lock)) {
      const now = new Date();
      try {
        utimesSync(opts.lock, now, now);
      } catch {
        // the lock went away; installAtomically will notice
      }
    }
  }, 30_000);
  try {
    return await run(opts.go.bin, args, {
      what: opts.what,
      cwd: opts.cwd,
      env: opts.env ?? goEnv(),
      timeoutMs: opts.timeoutMs,
    });
  } catch (err) {
    if (err instanceof CommandError) {
      const failure = parseGoFetchFailure(err.output);
      if (failure) throw new FetchError(`Go module ${failure.module}`, GO_PROXY, failure.detail);
    }
    throw err;
  } finally {
    clearInterval(ticker);
    progress(`  ${opts.what}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}

/** `<dir>.lock`, the lock installAtomically takes for an install dir. */
export function lockOf(dir: string): string {
  return `${dir}.lock`;
}
