/**
 * Fault injection for test stacks (ADR 0025): a delay filter on a backend sidecar's inbound HTTP
 * listeners that delays nothing until the runtime says so. The filter's own config injects a delay
 * into 0 % of requests; the admin runtime keys `fault.http.delay.fixed_delay_percent` and
 * `fault.http.delay.fixed_duration_ms` override the percentage and the duration while Envoy runs
 * (`POST /runtime_modify?key=value` on the admin interface, which listens on the pod's own loopback;
 * an empty value removes the override). Envoy reads those keys only when the filter is configured
 * with a `delay`, and `/runtime_modify` needs an admin layer in the bootstrap's `layered_runtime`
 * (compileEnvoy adds one with this filter).
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter#runtime
 *
 * Not on the edge: the edge's per-route stats are the SLOs' measuring point, and a delay before
 * the edge's router is not in its `upstream_rq_time`; a delay at the backend's sidecar is.
 * Compiled only with `EnvoyOptions.faultInjection`, which only test stacks set.
 */
import type { HttpFilterBuilder } from './ir.ts';

/** The runtime keys that turn the delay on (percent of requests) and set its length. */
export const faultDelayRuntime = {
  percent: 'fault.http.delay.fixed_delay_percent',
  durationMs: 'fault.http.delay.fixed_duration_ms',
} as const;

/** The delay's length when the runtime sets only the percentage. */
export const faultDefaultDelay = '0.1s';

/** The fault filter builder: on non-edge HTTP listeners of a sidecar compiled with faultInjection. */
export const faultInjection: HttpFilterBuilder<'envoy.filters.http.fault'> = {
  name: 'envoy.filters.http.fault',
  filter(l) {
    if (l.edge || l.options.faultInjection !== true) return undefined;
    return {
      name: 'envoy.filters.http.fault',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
        delay: {
          fixed_delay: faultDefaultDelay,
          percentage: { numerator: 0, denominator: 'HUNDRED' },
        },
      },
    };
  },
};
