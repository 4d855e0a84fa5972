/**
 * nginx: the local ingress. A complete `nginx.conf` (so `nginx -t -c <file>` checks it as is) that
 * terminates TLS, serves only the model's routes (method-limited with `limit_except`), limits the request
 * size, forwards the client IP and a request id, and proxies to the edge sidecar with keep-alive.
 * Directives: https://nginx.org/en/docs/http/ngx_http_core_module.html,
 * https://nginx.org/en/docs/http/ngx_http_proxy_module.html, https://nginx.org/en/docs/http/ngx_http_upstream_module.html.
 * Works with nginx ≥ 1.22 (no `http2 on`, which needs 1.25.1).
 */
import type { ValidModel } from '../validate.ts';
import { templateSegments } from './common.ts';

/** Options of `compileNginxHttp`: what goes inside `http {}`. */
export interface NginxHttpOptions {
  /** Where nginx listens (TLS). */
  listen: { address: string; port: number };
  /** PEM certificate and key for the route hosts. */
  tls: { certificate: string; key: string };
  /** The edge sidecar's plaintext loopback listener. */
  upstream: { address: string; port: number };
  /** A JSON access log (request id, client, status, duration), in addition to any other. */
  accessLog?: string;
  /** `client_max_body_size`. @default '1m' */
  clientMaxBodySize?: string;
}

/** Options of `compileNginx`: a whole `nginx.conf`. */
export interface NginxOptions extends NginxHttpOptions {
  /** A writable directory for the pid file and temp files (non-root nginx). */
  runDir: string;
  accessLog: string;
  errorLog: string;
  /** @default 1 */
  workerProcesses?: number;
  /** Run in the foreground (for a supervisor). @default true */
  foreground?: boolean;
  /** `user` directive, e.g. 'root root' when started as root with per-user directories. @default none */
  user?: string;
}

/** The nginx location for a path template: `= /orders` or `~ "^/orders/[^/]+$"`. */
export function nginxLocation(template: string): string {
  const segs = templateSegments(template);
  if (segs.every((s) => s !== null)) return `= ${template}`;
  const re = segs
    .map((s) => (s === null ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return `~ "^/${re}$"`;
}

/**
 * The body of the `http {}` block: log format, body limit, upstream, proxy headers and one TLS server
 * per host (plus a default server). For a harness that writes the main context itself.
 */
export function compileNginxHttp(model: ValidModel, o: NginxHttpOptions): string {
  const byHost = new Map<string, Map<string, Set<string>>>();
  for (const r of Object.values(model.routes))
    for (const h of r.hosts) {
      const paths = byHost.get(h) ?? new Map<string, Set<string>>();
      const methods = paths.get(r.path) ?? new Set<string>();
      methods.add(r.method);
      paths.set(r.path, methods);
      byHost.set(h, paths);
    }
  const listen = `${o.listen.address}:${o.listen.port}`;
  const tls = [
    `  ssl_certificate ${o.tls.certificate};`,
    `  ssl_certificate_key ${o.tls.key};`,
    '  ssl_protocols TLSv1.2 TLSv1.3;',
    '  ssl_session_cache shared:trellis_tls:1m;',
  ];
  const servers: string[] = [
    [
      '# Unknown hosts get 404.',
      'server {',
      `  listen ${listen} ssl default_server;`,
      '  server_name _;',
      ...tls,
      '  return 404;',
      '}',
    ].join('\n'),
  ];
  for (const [host, paths] of [...byHost.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const locations = [...paths.entries()].map(([path, methods]) =>
      [
        `  location ${nginxLocation(path)} {`,
        `    limit_except ${[...methods].sort().join(' ')} { deny all; }`,
        '    proxy_pass http://trellis_edge;',
        '  }',
      ].join('\n'),
    );
    servers.push(
      [
        'server {',
        `  listen ${listen} ssl;`,
        `  server_name ${host};`,
        ...tls,
        ...locations,
        '  location / { return 404; }',
        '}',
      ].join('\n'),
    );
  }
  return `server_tokens off;
log_format trellis escape=json '{"time":"$time_iso8601","request_id":"$request_id","client":"$remote_addr","host":"$host","method":"$request_method","uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,"duration_s":$request_time}';
${o.accessLog !== undefined ? `access_log ${o.accessLog} trellis;\n` : ''}client_max_body_size ${o.clientMaxBodySize ?? '1m'};
keepalive_timeout 65s;

upstream trellis_edge {
  server ${o.upstream.address}:${o.upstream.port};
  keepalive 64;
}

# Forwarded to the edge sidecar: keep-alive upstream, client IP, request id.
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Request-Id $request_id;
# The app echoes the id it was given; hide that copy so the client sees the header once.
proxy_hide_header X-Request-Id;
add_header X-Request-Id $request_id always;

${servers.join('\n\n')}
`;
}

/** A complete `nginx.conf` (main context around `compileNginxHttp`), ready for `nginx -t -c`. */
export function compileNginx(model: ValidModel, o: NginxOptions): string {
  const tmp = (n: string) => `${o.runDir}/${n}`;
  const http = compileNginxHttp(model, o)
    .split('\n')
    .map((l) => (l.trim() === '' ? l : `  ${l}`))
    .join('\n');
  return `# Generated by @trellis/policy from the model. Do not edit.
${(o.foreground ?? true) ? 'daemon off;\n' : ''}${o.user !== undefined ? `user ${o.user};\n` : ''}worker_processes ${o.workerProcesses ?? 1};
pid ${tmp('nginx.pid')};
error_log ${o.errorLog} warn;

events {
  worker_connections 1024;
}

http {
  default_type application/octet-stream;
  client_body_temp_path ${tmp('client_body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};

${http}}
`;
}
