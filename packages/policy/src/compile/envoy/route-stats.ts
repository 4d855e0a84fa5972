/**
 * Per-route statistics at the edge: the measuring point of the SLO rules (compile/slo.ts). Envoy
 * emits `vhost.<virtual host>.route.<stat_prefix>.upstream_rq_*` (counters by status class and the
 * `upstream_rq_time` histogram) only for a route with a `stat_prefix` (config.route.v3.Route), and
 * names them on /stats/prometheus `envoy_vhost_route_upstream_rq_*{envoy_route="<stat_prefix>"}`.
 * Only the edge listener sets it, so a request is counted once, not again by the backend's sidecar;
 * and only for budgeted routes, since Envoy warns each one costs about 1 KiB of stats memory.
 */
import { routeStatPrefix } from '../slo.ts';
import type { HcmBuilder } from './ir.ts';

/** Sets `stat_prefix` on the edge routes that have a budget. */
export const routeStats: HcmBuilder = {
  patchRoute(r, l) {
    if (l.edge && r.route.budget) r.envoy.stat_prefix = routeStatPrefix(r.name);
  },
};
