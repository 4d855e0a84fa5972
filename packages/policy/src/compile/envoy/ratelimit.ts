/**
 * Local rate limit: a token bucket per model route with `rateLimit`. The filter in the chain has no
 * bucket of its own (so it is off); each limited route enables it in `typed_per_filter_config`.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter
 */
import type { Route } from '../../schema.ts';
import type { LocalRateLimit } from '../envoy-types.ts';
import type { HttpFilterBuilder, HttpListenerIr } from './ir.ts';

const localRateLimitType =
  'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

function routeLimit(name: string, r: Route): LocalRateLimit | undefined {
  if (!r.rateLimit) return undefined;
  const pct = (key: string) => ({
    runtime_key: `${name}_${key}`,
    default_value: { numerator: 100, denominator: 'HUNDRED' as const },
  });
  return {
    '@type': localRateLimitType,
    stat_prefix: `route_${name}`,
    token_bucket: {
      max_tokens: r.rateLimit.burst,
      tokens_per_fill: r.rateLimit.requestsPerSecond,
      fill_interval: '1s',
    },
    filter_enabled: pct('rate_limit_enabled'),
    filter_enforced: pct('rate_limit_enforced'),
  };
}

/** Rate limits are the sidecar's: the edge leaves them to nginx. */
const limited = (l: HttpListenerIr) => !l.edge && l.routes.some(([, r]) => r.rateLimit);

/** The local rate limit builder. */
export const localRateLimit: HttpFilterBuilder<'envoy.filters.http.local_ratelimit'> = {
  name: 'envoy.filters.http.local_ratelimit',
  filter(l) {
    if (!limited(l)) return undefined;
    return {
      name: 'envoy.filters.http.local_ratelimit',
      typed_config: { '@type': localRateLimitType, stat_prefix: 'http_local_rate_limiter' },
    };
  },
  patchRoute(r, l) {
    const rl = l.edge ? undefined : routeLimit(r.name, r.route);
    if (rl) r.envoy.typed_per_filter_config = { 'envoy.filters.http.local_ratelimit': rl };
  },
};
