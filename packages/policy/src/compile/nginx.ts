/**
 * nginx: the local ingress. A complete `nginx.conf` (so `nginx -t -c <file>` checks it as is) that
 * terminates TLS, serves only the model's routes (method-limited with `limit_except`), applies each
 * route's rate limit (`limit_req`, 429), limits the request size, forwards the client IP and a request
 * id, and proxies to the edge sidecar with keep-alive.
 * Directives: https://nginx.org/en/docs/http/ngx_http_core_module.html,
 * https://nginx.org/en/docs/http/ngx_http_proxy_module.html, https://nginx.org/en/docs/http/ngx_http_upstream_module.html,
 * https://nginx.org/en/docs/http/ngx_http_limit_req_module.html, https://nginx.org/en/docs/http/ngx_http_map_module.html.
 * Works with nginx ≥ 1.22 (no `http2 on`, which needs 1.25.1; `$limit_req_status` needs 1.17.6).
 */
import type { Route } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
import type { ValidModel } from '../validate.ts';
import { templateSegments } from './common.ts';

/** Options of `compileNginxHttp`: what goes inside `http {}`. */
export interface NginxHttpOptions {
  /** Where nginx listens (TLS). */
  listen: { address: string; port: number };
  /**
   * PEM certificate and key for the route hosts. With `perHandshake`, nginx reads both files at each
   * TLS handshake (a variable in the path: nginx.org/en/docs/http/ngx_http_ssl_module.html#ssl_certificate):
   * a renewed certificate reaches new connections with no reload, so the established keep-alive
   * connections a reload would close stay open (ADR 0032). It costs CPU per full handshake. @default
   * read once, at start and at each reload
   */
  tls: { certificate: string; key: string; perHandshake?: boolean };
  /** The edge sidecar's plaintext loopback listener. */
  upstream: { address: string; port: number };
  /**
   * A JSON access log (request id, client, status, duration), in addition to any other. It names no
   * request header (no Authorization) and logs `$uri`, the path without its query string, where a
   * bearer token may ride (RFC 6750 §2.3); `msec` is the end time with milliseconds, for joins.
   */
  accessLog?: string;
  /** `client_max_body_size`. @default '1m' */
  clientMaxBodySize?: string;
  /**
   * nginx's own metrics (`GET /metrics`, Prometheus text) on `127.0.0.1:<port>`, for the metrics
   * front in the same pod (`compileDataMetricsProxy` with `service: 'nginx'`). Only when the model
   * declares a metrics scraper. @default none
   */
  metrics?: { port: number };
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
 * One route's limit at the edge: a `limit_req_zone` of its own, keyed by a `map` variable that is
 * non-empty only for the route's method.
 */
interface EdgeLimit {
  zone: string;
  keyVar: string;
  method: string;
  rate: NonNullable<Route['rateLimit']>;
}

/** The edge limit of every route that has a `rateLimit`, by route name, in name order. */
function edgeLimits(model: ValidModel): Map<string, EdgeLimit> {
  const out = new Map<string, EdgeLimit>();
  for (const name of Object.keys(model.routes).sort()) {
    const r = model.routes[name];
    if (!r?.rateLimit) continue;
    // Route names are DNS labels (validate.ts): fine in a zone name; a variable name takes no '-'.
    out.set(name, {
      zone: `route_${name}`,
      keyVar: `$route_${name.replaceAll('-', '_')}_key`,
      method: r.method,
      rate: r.rateLimit,
    });
  }
  return out;
}

/*
 * Rate limits: one bucket per route, shared by every client (not per client address). That is what
 * the sidecar enforces: compile/envoy.ts gives each route one local_ratelimit token bucket per Envoy,
 * drawn on by every caller, so the model's rate is the route's capacity. Keyed by client address, n
 * clients could send n times the rate past the edge, the sidecar would refuse the surplus, and the
 * edge limit would never be the binding one. (Per-client fairness is not something the model states.)
 *
 * Same numbers as Envoy's bucket. Envoy's starts with max_tokens = burst and refills continuously
 * (no fill timer since envoyproxy/envoy#35207) at tokens_per_fill / fill_interval = requestsPerSecond;
 * it never delays: with the bucket empty it answers 429. nginx's leaky bucket with `burst=b nodelay`
 * admits a fresh key's first request at excess 0 and refuses once the excess would pass b, so it
 * admits b + 1 at once and then `rate` per second, continuously (ms resolution); a refused request
 * draws nothing in either. Hence `rate=<requestsPerSecond>r/s burst=<burst - 1> nodelay` (no `burst=`
 * for burst 1: nginx refuses `burst=0`) and `limit_req_status 429` (nginx's default is 503). With the
 * same model on both hops the edge binds: the sidecar sees only what nginx admitted, a little later.
 *
 * One key per route, not per location: a location serves every method of its path, and limit_req
 * runs in the preaccess phase, before limit_except. So the key is a map of $request_method that is
 * empty except for the route's method, and nginx does not account requests whose key is empty: a GET
 * does not draw from POST's bucket on the same path, and a refused method draws from none.
 */

/** The http-level part of the rate limits: status, log level, one map and one zone per route. */
function rateLimitHttp(limits: Map<string, EdgeLimit>): string {
  if (limits.size === 0) return '';
  const lines = [
    '# Route rate limits (one bucket per route, for all clients, as the sidecars have).',
    'limit_req_status 429;',
    // Expected under load; the access log has the status, this line names the zone.
    'limit_req_log_level warn;',
  ];
  for (const [name, l] of limits)
    lines.push(
      `# route ${name}: ${l.rate.requestsPerSecond}/s, burst ${l.rate.burst}`,
      `map $request_method ${l.keyVar} {`,
      '  default "";',
      `  ${l.method} 1;`,
      '}',
      // One key per zone; 1m stays above nginx's minimum of 8 pages on 64 KiB-page systems too.
      `limit_req_zone ${l.keyVar} zone=${l.zone}:1m rate=${l.rate.requestsPerSecond}r/s;`,
    );
  return `${lines.join('\n')}\n\n`;
}

/** The `limit_req` lines of one location, one per limited route it serves. */
function rateLimitLocation(limits: Map<string, EdgeLimit>, routes: string[]): string[] {
  return routes.flatMap((name) => {
    const l = limits.get(name);
    if (!l) return [];
    const burst = l.rate.burst - 1;
    return [`    limit_req zone=${l.zone}${burst > 0 ? ` burst=${burst}` : ''} nodelay;`];
  });
}

/** Route names by host, path and method, hosts in name order. */
function routesByHost(model: ValidModel): [string, Map<string, Map<string, string>>][] {
  const byHost = new Map<string, Map<string, Map<string, string>>>();
  for (const [name, r] of Object.entries(model.routes))
    for (const h of r.hosts) {
      const paths = byHost.get(h) ?? new Map<string, Map<string, string>>();
      const methods = paths.get(r.path) ?? new Map<string, string>();
      methods.set(r.method, name);
      paths.set(r.path, methods);
      byHost.set(h, paths);
    }
  return [...byHost.entries()].sort(([a], [b]) => a.localeCompare(b));
}

/** The TLS `server` blocks: a default one that answers 404, then one per route host. */
function servers(model: ValidModel, o: NginxHttpOptions, limits: Map<string, EdgeLimit>): string[] {
  const listen = `${o.listen.address}:${o.listen.port}`;
  const perHandshake = o.tls.perHandshake === true;
  const tls = [
    `  ssl_certificate ${perHandshake ? '$trellis_edge_certificate' : o.tls.certificate};`,
    `  ssl_certificate_key ${perHandshake ? '$trellis_edge_certificate_key' : o.tls.key};`,
    '  ssl_protocols TLSv1.2 TLSv1.3;',
    '  ssl_session_cache shared:trellis_tls:1m;',
  ];
  const out: string[] = [
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
  for (const [host, paths] of routesByHost(model)) {
    const locations = [...paths.entries()].map(([path, methods]) =>
      [
        `  location ${nginxLocation(path)} {`,
        `    limit_except ${[...methods.keys()].sort().join(' ')} { deny all; }`,
        ...rateLimitLocation(limits, [...methods.values()].sort()),
        '    proxy_pass http://trellis_edge;',
        '  }',
      ].join('\n'),
    );
    out.push(
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
  return out;
}

/**
 * The maps that put the edge certificate's paths in variables, so that nginx reads the files at each
 * handshake (see {@link NginxHttpOptions.tls}). Any variable does; `$ssl_server_name` is set by then.
 */
function perHandshakeCertificate(o: NginxHttpOptions): string {
  if (o.tls.perHandshake !== true) return '';
  for (const [field, path] of [
    ['certificate', o.tls.certificate],
    ['key', o.tls.key],
  ] as const)
    if (!/^\/[^\s";{}$\\]+$/.test(path))
      throw new Error(
        `tls.${field}: an absolute path without spaces, quotes, braces or '$' is needed to read it at each handshake, got ${JSON.stringify(path)}`,
      );
  return `# The edge certificate is read at each TLS handshake (ADR 0032): a renewed one reaches new
# connections without a reload, and established keep-alive connections stay open.
map $ssl_server_name $trellis_edge_certificate {
  default "${o.tls.certificate}";
}
map $ssl_server_name $trellis_edge_certificate_key {
  default "${o.tls.key}";
}

`;
}

/**
 * The W3C `traceparent` nginx sends to the edge sidecar (ADR 0023): nginx has no OpenTelemetry module
 * here (Debian bookworm ships none), so it starts the trace itself with ids it already has. The trace
 * id is `$request_id` (32 lowercase hex, from 16 random bytes), so the trace id equals the request id
 * the audit trail joins on; the parent (nginx's) span id is its last 16 hex; the flags say sampled.
 * nginx exports no span of its own: in Jaeger the edge sidecar's span is the first, its parent
 * named but absent.
 * https://www.w3.org/TR/trace-context/#traceparent-header, https://nginx.org/en/docs/http/ngx_http_map_module.html
 */
export const traceparentMap = `map $request_id $trellis_traceparent {
  "~^(?<trellis_trace>[0-9a-f]{16}(?<trellis_span>[0-9a-f]{16}))$" "00-$trellis_trace-$trellis_span-01";
  default "";
}`;

/**
 * The metrics nginx renders itself, as Prometheus text: the embedded variables of
 * ngx_http_stub_status_module (https://nginx.org/en/docs/http/ngx_http_stub_status_module.html,
 * `$connections_active`, `_reading`, `_writing`, `_waiting`; Debian builds nginx
 * `--with-http_stub_status_module`). No request or accept counter: the module has those only on its
 * `stub_status` page (a text format of its own), not as variables, so they are left out rather than
 * rendered from something else.
 */
export const nginxMetricsGauges = [
  ['active', 'Client connections open now, including waiting ones.'],
  ['reading', 'Connections where nginx is reading the request header.'],
  ['writing', 'Connections where nginx is writing the response back to the client.'],
  ['waiting', 'Idle client connections waiting for a request (keep-alive).'],
] as const;

/** The path of nginx's metrics server (the one the metrics front admits). */
export const nginxMetricsPath = '/metrics';

/**
 * The loopback server of nginx's metrics: `GET /metrics` only, no access log (the log is the
 * routes' requests), everything else 404. The front in the pod is the only way in from outside.
 */
function metricsServer(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`compileNginxHttp: metrics.port must be an integer in [1, 65535], got ${port}`);
  const body = nginxMetricsGauges
    .map(
      ([g, help]) =>
        `# HELP nginx_connections_${g} ${help}\\n# TYPE nginx_connections_${g} gauge\\nnginx_connections_${g} $connections_${g}\\n`,
    )
    .join('');
  return [
    '# nginx metrics (stub_status gauges, Prometheus text), for the metrics front on this loopback.',
    'server {',
    `  listen 127.0.0.1:${port};`,
    '  access_log off;',
    `  location = ${nginxMetricsPath} {`,
    '    limit_except GET { deny all; }',
    '    default_type "text/plain; version=0.0.4";',
    `    return 200 "${body}";`,
    '  }',
    '  location / { return 404; }',
    '}',
  ].join('\n');
}

/**
 * The body of the `http {}` block: log format, body limit, rate limits, upstream, proxy headers and
 * one TLS server per host (plus a default server). For a harness that writes the main context itself.
 */
export function compileNginxHttp(model: BoundModel, o: NginxHttpOptions): string {
  if (o.metrics !== undefined && model.binding.metrics === undefined)
    throw new Error(
      'metrics.scraper: nginx metrics were asked for, but the model declares no metrics scraper to read them',
    );
  const limits = edgeLimits(model);
  return `server_tokens off;
${traceparentMap}
log_format trellis escape=json '{"time":"$time_iso8601","msec":$msec,"source":"nginx","request_id":"$request_id","traceparent":"$trellis_traceparent","client":"$remote_addr","host":"$host","method":"$request_method","uri":"$uri","status":$status,"limit_req":"$limit_req_status","bytes":$body_bytes_sent,"duration_s":$request_time}';
${o.accessLog !== undefined ? `access_log ${o.accessLog} trellis;\n` : ''}client_max_body_size ${o.clientMaxBodySize ?? '1m'};
keepalive_timeout 65s;

${perHandshakeCertificate(o)}${rateLimitHttp(limits)}upstream trellis_edge {
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
# nginx starts the trace (ADR 0023): the trace id is the request id; any client traceparent is replaced.
proxy_set_header traceparent $trellis_traceparent;
proxy_set_header tracestate "";
# The app echoes the id it was given; hide that copy so the client sees the header once.
proxy_hide_header X-Request-Id;
add_header X-Request-Id $request_id always;

${[...servers(model, o, limits), ...(o.metrics !== undefined ? [metricsServer(o.metrics.port)] : [])].join('\n\n')}
`;
}

/** A complete `nginx.conf` (main context around `compileNginxHttp`), ready for `nginx -t -c`. */
export function compileNginx(model: BoundModel, o: NginxOptions): string {
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
