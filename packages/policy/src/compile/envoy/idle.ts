/**
 * What a sidecar spends while no request is in flight, cut to what it needs. Measured with
 * load-tests/bench/mesh-cost.ts (docs/performance.md, "Mesh cost"; ADR 0019):
 * - Stats: Envoy latches counters and merges histograms on a 5 s timer for its stats sinks. A
 *   sidecar has no sink; its readers (the load test's scrape, Prometheus) ask the admin interface,
 *   which flushes first when `stats_flush_on_admin` is set (admin `StatsHandler`), so the timer only
 *   wakes the main thread for nobody.
 *   https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/bootstrap/v3/bootstrap.proto
 * - Watchdogs: the guard dog threads wake at the smallest of their timeouts (`miss_timeout`
 *   200 ms by default) and every worker touches its watchdog on a timer. Neither timeout kills
 *   anything (no `kill_timeout` is set): they only count `server.watchdog_miss` and
 *   `watchdog_mega_miss`. Ticking every second keeps both stats, at a coarser grain.
 *   https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/bootstrap/v3/bootstrap.proto#config-bootstrap-v3-watchdog
 */
import type { EnvoyBootstrap, EnvoyWatchdog } from '../envoy-types.ts';

/** Both watchdogs: a miss after 1 s without a touch, a mega miss after 5 s. */
export const sidecarWatchdog: EnvoyWatchdog = { miss_timeout: '1s', megamiss_timeout: '5s' };

/** The bootstrap fields that keep an idle sidecar asleep. */
export function idleSettings(): Pick<EnvoyBootstrap, 'stats_flush_on_admin' | 'watchdogs'> {
  return {
    stats_flush_on_admin: true,
    watchdogs: { main_thread_watchdog: sidecarWatchdog, worker_watchdog: sidecarWatchdog },
  };
}
