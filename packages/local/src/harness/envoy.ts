import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError } from '../toolchain/errors.ts';
import { run } from '../toolchain/exec.ts';
import { envoy } from '../toolchain/envoy.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

/** An Envoy bootstrap: a JSON-able object, or YAML/JSON text. */
export type EnvoyConfig = Record<string, unknown> | string;

/** The result of checking a config with the real binary (`envoy --mode validate`, `nginx -t`). */
export type ConfigCheck = { ok: true } | { ok: false; error: string };

export interface EnvoyOptions {
  /** The instance's own directory: bootstrap, log, pid, base id and admin address files go here. */
  dir: string;
  /**
   * The bootstrap config. Leave out `admin`: the harness binds the admin interface to 127.0.0.1 on a
   * kernel-chosen port (via `--config-yaml`, which Envoy merges over the file).
   */
  config: EnvoyConfig;
  /** Name for logs and errors. @default 'envoy' */
  name?: string;
  /** Worker threads (`--concurrency`). @default 1 */
  concurrency?: number;
  /** Envoy log level (`-l`). @default 'info' */
  logLevel?: string;
  /** How long to wait for the admin `/ready` to say LIVE. @default 30_000 */
  readyTimeoutMs?: number;
  /**
   * Bind the admin interface to this port on 127.0.0.1, for a bootstrap whose own clusters reach it
   * (a sidecar's metrics listener routes `/stats/prometheus` there). @default 0, kernel-chosen
   */
  adminPort?: number;
}

/** A running Envoy. */
export interface EnvoyInstance {
  /** Admin base URL, e.g. `http://127.0.0.1:40123` (loopback only). */
  readonly adminUrl: string;
  readonly process: ManagedProcess;
  /** Milliseconds from spawn to admin `/ready` = LIVE. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

function writeBootstrap(dir: string, config: EnvoyConfig, forRun: boolean): string {
  if (typeof config === 'string') {
    if (config.trim() === '') throw new Error('envoy: config is empty');
    const path = join(dir, 'envoy.yaml');
    writeFileSync(path, config);
    return path;
  }
  if (forRun && 'admin' in config)
    throw new Error('envoy: config.admin must be left out; the harness owns the admin interface');
  const path = join(dir, 'envoy.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

// Merged over the bootstrap by --config-yaml (docs: operations/cli). Port 0 lets the kernel choose;
// --admin-address-path tells us which, so there is no window in which another process takes the port.
const adminOverride = (port = 0) =>
  JSON.stringify({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: port } } },
  });

/** What {@link envoyArgs} needs: the instance's dir and bootstrap file, and its worker settings. */
export interface EnvoyArgsOptions {
  /** The bootstrap file. */
  configPath: string;
  /** Worker threads (`--concurrency`). @default 1 */
  concurrency?: number;
  /** Envoy log level (`-l`). @default 'info' */
  logLevel?: string;
}

/**
 * Envoy's command line for one instance (docs: operations/cli), shared by {@link startEnvoy} and the
 * local stack's supervised sidecars. `--disable-hot-restart`: nothing here hot-restarts Envoy (SDS
 * rotates certificates in place; a new bootstrap is a supervised restart), and without it every Envoy
 * leaves a `/dev/shm/envoy_shared_memory_*` segment behind when it exits (one per start, so also one
 * per supervised restart) and needs a base id of its own to run beside another.
 */
export function envoyArgs(o: EnvoyArgsOptions): string[] {
  const concurrency = o.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new Error(`envoy: concurrency must be an integer in [1, 64], got ${concurrency}`);
  return [
    '--config-path',
    o.configPath,
    '--disable-hot-restart',
    '--concurrency',
    String(concurrency),
    '--log-level',
    o.logLevel ?? 'info',
  ];
}

/**
 * Start Envoy with its own dir and admin on loopback, and wait until the admin `GET /ready` answers
 * LIVE. Several run side by side (hot restart is off, so they share no base id).
 */
export async function startEnvoy(opts: EnvoyOptions): Promise<EnvoyInstance> {
  const bin = await envoy.ensure();
  mkdirSync(opts.dir, { recursive: true });
  const configPath = writeBootstrap(opts.dir, opts.config, true);
  const adminFile = join(opts.dir, 'admin-address');
  rmSync(adminFile, { force: true });
  const t0 = Date.now();
  const proc = ManagedProcess.start({
    name: opts.name ?? 'envoy',
    command: bin,
    args: [
      ...envoyArgs({
        configPath,
        concurrency: opts.concurrency,
        logLevel: opts.logLevel,
      }),
      '--config-yaml',
      adminOverride(opts.adminPort),
      '--admin-address-path',
      adminFile,
    ],
    dir: opts.dir,
    stopGraceMs: 5_000,
  });
  try {
    const adminUrl = await waitUntil(
      async () => {
        if (!existsSync(adminFile)) return null;
        const addr = readFileSync(adminFile, 'utf8').trim();
        if (!addr) return null;
        const url = `http://${addr}`;
        const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) });
        const body = (await res.text()).trim();
        if (res.status !== 200 || body !== 'LIVE')
          throw new Error(`/ready said ${res.status} ${body}`);
        return url;
      },
      {
        what: `${proc.name} admin /ready = LIVE`,
        timeoutMs: opts.readyTimeoutMs ?? 30_000,
        intervalMs: 100,
        proc,
      },
    );
    const startupMs = Date.now() - t0;
    return { adminUrl, process: proc, startupMs, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/**
 * Check a bootstrap with `envoy --mode validate` (no traffic, no hot restart). On failure, `error`
 * holds Envoy's own message, e.g. the unknown field and its path.
 */
export async function validateEnvoyConfig(config: EnvoyConfig): Promise<ConfigCheck> {
  const bin = await envoy.ensure();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-envoy-validate-'));
  let path = '';
  try {
    path = writeBootstrap(dir, config, false);
    await run(bin, ['--mode', 'validate', '--config-path', path, '--log-level', 'error'], {
      what: 'envoy --mode validate',
      timeoutMs: 60_000,
    });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    return { ok: false, error: envoyErrorLines(err.output, path || dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Envoy prints its log prefix on each line; keep the messages, drop the noise.
function envoyErrorLines(output: string, path: string): string {
  // The throwaway file's path means nothing to the caller.
  const lines = output
    .split(path)
    .join('<bootstrap>')
    .split('\n')
    .map((l) =>
      l
        .replace(/^(\[[^\]]*\])+\s*(\[[^\]]*\]\s*)?/, '')
        // protobuf's debug strings put random extra spaces in on purpose; collapse them.
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter((l) => l.length > 0);
  return lines.join('\n') || 'envoy --mode validate failed without a message';
}
