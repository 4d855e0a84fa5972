/**
 * The variants of the compiled sidecar that load-tests/bench/mesh-cost.ts compares: `after` is the
 * sidecar as compiled, `before` the same with ADR 0019's changes undone (checked against main's
 * compiler when the change was made), the others single-feature edits for profiling. Each is an
 * edit of the compiled bootstrap, applied to a copy.
 */
import type { Bootstrap } from '../src/ab/stack.ts';

interface Hcm {
  access_log?: unknown[];
  http_filters: { name: string }[];
  route_config: { request_headers_to_add?: unknown[] };
}

/** Every HTTP connection manager of the bootstrap (its typed_config), edited in place. */
function hcms(b: Bootstrap): Hcm[] {
  const out: Hcm[] = [];
  const res = b.static_resources as {
    listeners: { filter_chains: { filters: { name: string; typed_config: unknown }[] }[] }[];
  };
  for (const l of res.listeners)
    for (const fc of l.filter_chains)
      for (const f of fc.filters)
        if (f.name === 'envoy.filters.network.http_connection_manager')
          out.push(f.typed_config as Hcm);
  return out;
}

/** jwt_authn providers of every HTTP listener. */
function jwtProviders(b: Bootstrap): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const h of hcms(b))
    for (const f of h.http_filters)
      if (f.name === 'envoy.filters.http.jwt_authn')
        out.push(
          ...Object.values(
            (
              f as unknown as {
                typed_config: { providers: Record<string, Record<string, unknown>> };
              }
            ).typed_config.providers,
          ),
        );
  return out;
}

/** Undoes ADR 0019's jwt cache. */
function noJwtCache(b: Bootstrap): void {
  for (const p of jwtProviders(b)) delete p.jwt_cache_config;
}

/** Undoes ADR 0019's idle settings (Envoy's defaults: 5 s stats flush timer, 200 ms watchdogs). */
function noIdle(b: Bootstrap): void {
  delete b.stats_flush_on_admin;
  delete b.watchdogs;
}

const edit =
  (f: (b: Bootstrap) => void) =>
  (b: Bootstrap): Bootstrap => {
    const c = structuredClone(b);
    f(c);
    return c;
  };

/** Named edits of the compiled sidecar: profiling variants. */
export const VARIANTS: Record<string, ((b: Bootstrap) => Bootstrap) | undefined> = {
  // As compiled.
  after: undefined,
  after2: undefined,
  // No HTTP access log (profiling only: the audit trail needs it).
  nolog: edit((b) => {
    for (const h of hcms(b)) delete h.access_log;
  }),
  // No stats at all (profiling only).
  nostats: edit((b) => {
    b.stats_config = { stats_matcher: { reject_all: true } };
  }),
  // The inbound listener offers only HTTP/1.1 in ALPN (what the ingress's cluster speaks).
  h1: edit((b) => {
    for (const l of (b.static_resources as { listeners: Record<string, unknown>[] }).listeners) {
      if (l.name !== 'inbound_http') continue;
      const fc = (
        l.filter_chains as { transport_socket: { typed_config: Record<string, unknown> } }[]
      )[0];
      const ctx = fc?.transport_socket.typed_config.common_tls_context as Record<string, unknown>;
      ctx.alpn_protocols = ['http/1.1'];
    }
  }),
  // Only the router, and a fixed payload header for the app (profiling only: no jwt, no RBAC).
  httponly: edit((b) => {
    for (const h of hcms(b)) {
      h.http_filters = h.http_filters.filter((f) => f.name === 'envoy.filters.http.router');
      h.route_config.request_headers_to_add = [
        {
          header: {
            key: 'x-jwt-payload',
            value: Buffer.from(JSON.stringify({ sub: 'bench' })).toString('base64url'),
          },
        },
      ];
      delete h.access_log;
    }
  }),
  // The sidecar as compiled before ADR 0019 (byte for byte what main compiled for all three
  // workloads when the change was made, checked then).
  before: edit((b) => {
    noJwtCache(b);
    noIdle(b);
  }),
  // Before, plus only the jwt cache.
  jwtcache: edit(noIdle),
  // Before, plus only the idle settings.
  idle: edit(noJwtCache),
  // No RBAC and no rate limit: jwt_authn and the router only (profiling only).
  jwtonly: edit((b) => {
    for (const h of hcms(b))
      h.http_filters = h.http_filters.filter(
        (f) =>
          f.name !== 'envoy.filters.http.rbac' && f.name !== 'envoy.filters.http.local_ratelimit',
      );
  }),
};
