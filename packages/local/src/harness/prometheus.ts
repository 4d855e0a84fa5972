/**
 * A real Prometheus for tests: the toolchain's Debian build, every path passed as a flag (nothing from
 * /etc or /var), listening on 127.0.0.1 only, with its TSDB in the instance's own directory.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ensurePrometheus } from '../toolchain/prometheus.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** The instance's own directory: config, rule files, TSDB and log. */
  dir: string;
  /**
   * `prometheus.yml` as text. Name rule files relative to `dir` (Prometheus resolves them against the
   * config file's directory) and write them with `files`.
   */
  config: string;
  /**
   * Further files to write into `dir` before the start, by relative name (e.g. rule files,
   * `consoles/index.html`).
   */
  files?: Record<string, string>;
  /** Name for logs and errors. @default 'prometheus' */
  name?: string;
  /** Further flags, e.g. `--web.console.templates=…`. @default none */
  args?: string[];
  /** How long to wait for `/-/ready`. @default 30_000 */
  readyTimeoutMs?: number;
}

/** A running Prometheus. */
export interface PrometheusInstance {
  /** Base URL, `http://127.0.0.1:<port>` (loopback only). */
  readonly url: string;
  readonly process: ManagedProcess;
  /** Milliseconds from spawn to `/-/ready` = 200. */
  readonly startupMs: number;
  /** An instant query through the HTTP API (`/api/v1/query`); throws on a non-success status. */
  query(promql: string): Promise<PromSample[]>;
  /** Any GET of the HTTP API under `/api/v1/`, its `data` field. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

/** One sample of an instant vector. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/** The flags of one instance (prometheus --help of 2.42: config, TSDB, listen address). */
export function prometheusArgs(dir: string, port: number): string[] {
  return [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=info',
  ];
}

/** Start Prometheus and wait until it is ready (its config and rule files loaded). */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusInstance> {
  const layout = await ensurePrometheus();
  mkdirSync(join(opts.dir, 'data'), { recursive: true });
  writeFileSync(join(opts.dir, 'prometheus.yml'), opts.config);
  for (const [name, text] of Object.entries(opts.files ?? {})) {
    mkdirSync(dirname(join(opts.dir, name)), { recursive: true });
    writeFileSync(join(opts.dir, name), text);
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  const proc = ManagedProcess.start({
    name: opts.name ?? 'prometheus',
    command: layout.prometheus,
    args: [...prometheusArgs(opts.dir, port), ...(opts.args ?? [])],
    dir: opts.dir,
    stopGraceMs: 5_000,
  });
  try {
    await waitUntil(
      async () => {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        await res.text();
        return res.status === 200;
      },
      {
        what: `${proc.name} /-/ready`,
        timeoutMs: opts.readyTimeoutMs ?? 30_000,
        intervalMs: 100,
        proc,
      },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const startupMs = Date.now() - t0;
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { status: string; data?: T; error?: string };
    if (body.status !== 'success' || body.data === undefined)
      throw new Error(`prometheus /api/v1/${path}: ${res.status} ${body.error ?? body.status}`);
    return body.data;
  };
  const query = async (promql: string): Promise<PromSample[]> => {
    const data = await api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>(`query?query=${encodeURIComponent(promql)}`);
    if (data.resultType !== 'vector')
      throw new Error(`prometheus: ${promql} is a ${data.resultType}, not an instant vector`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };
  return { url, process: proc, startupMs, query, api, stop: () => proc.stop() };
}
