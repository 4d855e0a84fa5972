/**
 * The HTTP filter chain: one builder per filter, and the chain's order in one list (as
 * envoyproxy/gateway's `newOrderedHTTPFilter`, internal/xds/translator/httpfilters.go).
 */
import type { HttpFilter } from '../envoy-types.ts';
import { accessLog } from './access-log.ts';
import { faultInjection } from './fault.ts';
import { identityHeaders } from './identity-headers.ts';
import type { HcmBuilder, HttpFilterBuilder, HttpListenerIr } from './ir.ts';
import { jwtAuthn } from './jwt.ts';
import { localRateLimit } from './ratelimit.ts';
import { rbac } from './rbac.ts';
import { routeStats } from './route-stats.ts';
import { router } from './router.ts';
import { tracing } from './tracing.ts';

/**
 * The order of the HTTP filters on an inbound listener. jwt_authn first: it verifies the token and
 * leaves the payload in dynamic metadata, which RBAC then matches (with the peer certificate); the
 * rate limit counts only requests RBAC let through; a test stack's fault delay (ADR 0025) holds only
 * requests that would reach the app, as a slow app would; the router is terminal, so it is last.
 */
export const httpFilterOrder = [
  'envoy.filters.http.jwt_authn',
  'envoy.filters.http.rbac',
  'envoy.filters.http.local_ratelimit',
  'envoy.filters.http.fault',
  'envoy.filters.http.router',
] as const satisfies readonly HttpFilter['name'][];

// Every filter the compiler can emit has its place in the order (a type error otherwise).
type Unordered = Exclude<HttpFilter['name'], (typeof httpFilterOrder)[number]>;
const _everyFilterOrdered: [Unordered] extends [never] ? true : never = true;
void _everyFilterOrdered;

const builders: { [N in HttpFilter['name']]: HttpFilterBuilder<N> } = {
  'envoy.filters.http.jwt_authn': jwtAuthn,
  'envoy.filters.http.rbac': rbac,
  'envoy.filters.http.local_ratelimit': localRateLimit,
  'envoy.filters.http.fault': faultInjection,
  'envoy.filters.http.router': router,
};

/**
 * Every builder that patches a listener, in the order they run: identity headers, the access log,
 * the edge's per-route stats, tracing, then the chain.
 */
export const hcmBuilders: readonly HcmBuilder[] = [
  identityHeaders,
  accessLog,
  routeStats,
  tracing,
  ...httpFilterOrder.map((n) => builders[n]),
];

/** The filter chain of a listener: each builder's filter, in `httpFilterOrder`. */
export function httpFilters(l: HttpListenerIr): HttpFilter[] {
  return httpFilterOrder.flatMap((n): HttpFilter[] => {
    const f = builders[n].filter(l);
    return f ? [f] : [];
  });
}
