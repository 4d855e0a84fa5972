import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { tool } from '../pods/exec.ts';
import { netnsPath } from '../pods/names.ts';
import { CommandError } from '../toolchain/errors.ts';
import { run } from '../toolchain/exec.ts';
import { nginx, nginxMimeTypesIn } from '../toolchain/nginx.ts';
import type { ConfigCheck } from './envoy.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

export interface NginxOptions {
  /** The instance's own directory: prefix, nginx.conf, pid, temp dirs, logs. */
  dir: string;
  /**
   * The body of the `http {}` block (upstreams, servers, maps). The harness owns the main context,
   * `events`, and every path nginx would otherwise take from /etc or /var.
   */
  config: string;
  /**
   * URL to probe for readiness; any HTTP response counts. @default derived from the first `listen`
   * (https when it has `ssl`)
   */
  readyUrl?: string;
  /** Name for logs and errors. @default 'nginx' */
  name?: string;
  /** @default 1 */
  workerProcesses?: number;
  /** @default 15_000 */
  readyTimeoutMs?: number;
}

/** A running nginx. */
export interface NginxInstance {
  /** The URL readiness was probed on (`http://127.0.0.1:<port>/`). */
  readonly url: string;
  readonly process: ManagedProcess;
  /** Milliseconds from spawn to the first HTTP response. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

/** Options of {@link renderNginxConf}. */
export interface RenderNginxOptions {
  /**
   * The default-format access log; `null` leaves it out (for an http body that names its own).
   * @default `<prefix>/access.log`
   */
  accessLog?: string | null;
  /**
   * Write the `user root root` directive when this process is root. Off for an nginx that runs as
   * an unprivileged user (a pod's), where the directive would only earn a warning: its workers
   * stay that user anyway. @default true
   */
  rootUser?: boolean;
}

/**
 * The full nginx.conf around an `http {}` body. All paths are absolute under `prefix`; directive
 * names from nginx.org/en/docs (ngx_core_module: daemon, pid, error_log; ngx_http_core_module and
 * ngx_http_proxy_module: *_temp_path).
 */
export function renderNginxConf(
  prefix: string,
  httpBody: string,
  mimeTypes: string,
  workers = 1,
  opts: RenderNginxOptions = {},
): string {
  const tmp = (n: string): string => join(prefix, 'tmp', n);
  const accessLog = opts.accessLog === undefined ? join(prefix, 'access.log') : opts.accessLog;
  return [
    '# Written by the Trellis harness; nothing here points at /etc or /var.',
    'daemon off;',
    // Run as root (CI), workers would switch to `nobody`, which cannot enter the per-user dirs; keep
    // the invoking user, which is what happens anyway when nginx is started by a normal user.
    ...((opts.rootUser ?? true) && process.getuid?.() === 0 ? ['user root root;'] : []),
    `worker_processes ${workers};`,
    `pid ${join(prefix, 'nginx.pid')};`,
    'error_log stderr notice;',
    'events { worker_connections 1024; }',
    'http {',
    `  include ${mimeTypes};`,
    '  default_type application/octet-stream;',
    ...(accessLog === null ? [] : [`  access_log ${accessLog};`]),
    `  client_body_temp_path ${tmp('body')};`,
    `  proxy_temp_path ${tmp('proxy')};`,
    `  fastcgi_temp_path ${tmp('fastcgi')};`,
    `  uwsgi_temp_path ${tmp('uwsgi')};`,
    `  scgi_temp_path ${tmp('scgi')};`,
    indent(httpBody),
    '}',
    '',
  ].join('\n');
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => (l.trim() ? `  ${l}` : l))
    .join('\n');
}

/** The readiness URL implied by the first `listen` directive, or null when there is none. */
export function urlFromListen(httpBody: string): string | null {
  const m = /^\s*listen\s+([^;]+);/m.exec(httpBody);
  if (!m?.[1]) return null;
  const [addr = '', ...flags] = m[1].trim().split(/\s+/);
  const scheme = flags.includes('ssl') ? 'https' : 'http';
  const hostPort = /^\d+$/.test(addr) ? `127.0.0.1:${addr}` : addr.replace(/^\*:/, '127.0.0.1:');
  return `${scheme}://${hostPort}/`;
}

const TEMP_DIRS = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'] as const;

function prepare(dir: string, config: string, mimeTypes: string, workers?: number): string {
  if (config.trim() === '') throw new Error('nginx: config (the http block body) is empty');
  for (const n of TEMP_DIRS) mkdirSync(join(dir, 'tmp', n), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, renderNginxConf(dir, config, mimeTypes, workers));
  return conf;
}

function mimeTypesFor(bin: string): string {
  // bin = <install>/usr/sbin/nginx
  return nginxMimeTypesIn(dirname(dirname(dirname(bin))));
}

// Readiness only: any HTTP response (even 404) proves nginx is serving; TLS is not verified here.
function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: 2_000, rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** What runs one nginx under a supervisor: the command, its arguments, and the files under `dir`. */
export interface NginxLaunchSpec {
  command: string;
  args: string[];
  /** Relative to `dir`: `nginx.conf`, and a placeholder in each temp dir so that the dirs exist. */
  files: Record<string, string>;
}

/**
 * The command line and config of an nginx whose prefix is `dir` (what {@link startNginx} runs, for a
 * supervised process such as the local stack's ingress). Installs nginx if needed.
 */
export async function nginxLaunchSpec(o: {
  dir: string;
  config: string;
  workerProcesses?: number;
  render?: RenderNginxOptions;
}): Promise<NginxLaunchSpec> {
  if (o.config.trim() === '') throw new Error('nginx: config (the http block body) is empty');
  const bin = await nginx.ensure();
  const conf = join(o.dir, 'nginx.conf');
  const files: Record<string, string> = {
    'nginx.conf': renderNginxConf(o.dir, o.config, mimeTypesFor(bin), o.workerProcesses, o.render),
  };
  for (const n of TEMP_DIRS) files[`tmp/${n}/.keep`] = '';
  return { command: bin, args: ['-p', o.dir, '-c', conf, '-e', 'stderr'], files };
}

/** Start nginx in the foreground with its own prefix, and wait for a real HTTP response. */
export async function startNginx(opts: NginxOptions): Promise<NginxInstance> {
  const url = opts.readyUrl ?? urlFromListen(opts.config);
  if (!url) throw new Error('nginx: config has no `listen` directive; pass readyUrl');
  const bin = await nginx.ensure();
  mkdirSync(opts.dir, { recursive: true });
  const conf = prepare(opts.dir, opts.config, mimeTypesFor(bin), opts.workerProcesses);
  const t0 = Date.now();
  const proc = ManagedProcess.start({
    name: opts.name ?? 'nginx',
    command: bin,
    args: ['-p', opts.dir, '-c', conf, '-e', 'stderr'],
    dir: opts.dir,
    stopGraceMs: 5_000,
  });
  try {
    await waitUntil(async () => (await probe(url)) > 0, {
      what: `${proc.name} answering ${url}`,
      timeoutMs: opts.readyTimeoutMs ?? 15_000,
      intervalMs: 100,
      proc,
    });
    return { url, process: proc, startupMs: Date.now() - t0, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/**
 * Check an `http {}` body with `nginx -t` inside a throwaway prefix. `nginx -t` binds the listen
 * addresses (a port already in use passes, an address the host lacks does not): for an nginx that
 * will listen on a pod's address, pass the pod's network namespace (`netns`), where the check then
 * runs (as this process's user, which must be root to enter it).
 */
export async function testNginxConfig(
  config: string,
  opts: { netns?: string } = {},
): Promise<ConfigCheck> {
  const bin = await nginx.ensure();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-nginx-test-'));
  const conf = join(dir, 'nginx.conf');
  try {
    prepare(dir, config, mimeTypesFor(bin));
    const argv = [bin, '-t', '-q', '-p', dir, '-c', conf, '-e', 'stderr'];
    const [cmd = bin, ...args] =
      opts.netns === undefined
        ? argv
        : [tool('nsenter'), `--net=${netnsPath(opts.netns)}`, '--', ...argv];
    await run(cmd, args, { what: 'nginx -t', timeoutMs: 30_000 });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const offset = preambleLines(dir, mimeTypesFor(bin));
    return { ok: false, error: explainNginxError(err.output, conf, offset) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * nginx's messages without the timestamp and pid, with `nginx.conf:<n>` turned into the line of
 * the caller's http body (the harness wraps it, so the file's numbering would mislead).
 */
export function explainNginxError(output: string, confPath: string, offset: number): string {
  const lines = output
    .split('\n')
    .map((l) =>
      l
        .replace(/^nginx: /, '')
        .replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')
        .replace(/^(\[\w+\]) \d+#\d+: /, '$1 ')
        .replace(new RegExp(`in ${escapeRe(confPath)}:(\\d+)`), (_m, n: string) => {
          const line = Number(n) - offset;
          return line >= 1 ? `in config line ${line}` : `in the harness preamble (nginx.conf:${n})`;
        })
        .trim(),
    )
    .filter((l) => l && !/configuration file .* test (failed|is successful)/.test(l));
  return lines.join('\n') || output.trim();
}

/** How many nginx.conf lines come before the first line of the http body. */
function preambleLines(prefix: string, mimeTypes: string, workers?: number): number {
  return renderNginxConf(prefix, '\u0000', mimeTypes, workers).split('\n').indexOf('  \u0000');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
