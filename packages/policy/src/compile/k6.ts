/**
 * k6 thresholds from the budgets, as data: which metric (narrowed by tags to one route's requests,
 * which must carry the tag `route:<route name>`), which statistic, compared how with what value. The
 * k6 edge (load-tests) renders them in k6's syntax (`http_req_duration{route:x}`: `p(99)<=10`) and adds
 * the run's own filters and abort settings.
 * https://grafana.com/docs/k6/latest/using-k6/thresholds/
 */
import type { ValidModel } from '../validate.ts';

/**
 * A k6 aggregation method: a percentile of a Trend, or a named statistic (Trend: avg, min, max, med;
 * Rate: rate; Counter: count, rate; Gauge: value).
 */
export type K6Statistic =
  { percentile: number } | 'avg' | 'min' | 'max' | 'med' | 'rate' | 'count' | 'value';

/** One threshold: `statistic(metric{tags}) comparison value`, for example p(99) of a route's durations <= 10. */
export interface K6Threshold {
  /** Metric name: a k6 built-in (`http_req_duration`, `http_req_failed`) or a custom one. */
  metric: string;
  /** Tag filter: the threshold judges only samples carrying every one of these tags (in this order). */
  tags: Record<string, string>;
  statistic: K6Statistic;
  comparison: '<' | '<=' | '>' | '>=' | '==' | '!=';
  value: number;
  /** Stop the run when the threshold is crossed (k6 `abortOnFail`). Unset: judged at the end only. */
  abortOnFail?: boolean;
  /** How long after the start `abortOnFail` may act (k6 `delayAbortEval`, a duration like `30s`). */
  delayAbortEval?: string;
}

/** One route's load target. */
export interface K6RouteTarget {
  route: string;
  method: string;
  path: string;
  hosts: string[];
  rps: number;
  p50Ms?: number;
  p99Ms: number;
  maxErrorRate: number;
}

/** What `compileK6Thresholds` returns. */
export interface K6Thresholds {
  /** Every budget as a threshold, route by route (duration, then failures), then the mesh overhead. */
  thresholds: K6Threshold[];
  /** The routes with a budget, for building scenarios (constant-arrival-rate at `rps`). */
  routes: K6RouteTarget[];
  /** The per-traversal mesh overhead budget, when the model has one. */
  meshOverhead?: { metric: string; p50Ms: number; p99Ms: number; rps?: number };
}

/** The custom Trend metric a load test records mesh overhead in (milliseconds). */
export const meshOverheadMetric = 'trellis_mesh_overhead';

/** p(50) (when budgeted) and p(99) of a Trend, each at most its budget in milliseconds. */
function latency(
  metric: string,
  tags: Record<string, string>,
  p50Ms: number | undefined,
  p99Ms: number,
): K6Threshold[] {
  const at = (percentile: number, value: number): K6Threshold => ({
    metric,
    tags: { ...tags },
    statistic: { percentile },
    comparison: '<=',
    value,
  });
  return [...(p50Ms !== undefined ? [at(50, p50Ms)] : []), at(99, p99Ms)];
}

/** Compiles budgets to k6 thresholds. */
export function compileK6Thresholds(model: ValidModel): K6Thresholds {
  const thresholds: K6Threshold[] = [];
  const routes: K6RouteTarget[] = [];
  for (const [name, r] of Object.entries(model.routes)) {
    const b = r.budget;
    if (!b) continue;
    thresholds.push(...latency('http_req_duration', { route: name }, b.p50Ms, b.p99Ms), {
      metric: 'http_req_failed',
      tags: { route: name },
      statistic: 'rate',
      comparison: '<=',
      value: b.maxErrorRate,
    });
    routes.push({
      route: name,
      method: r.method,
      path: r.path,
      hosts: [...r.hosts],
      rps: b.rps,
      ...(b.p50Ms !== undefined ? { p50Ms: b.p50Ms } : {}),
      p99Ms: b.p99Ms,
      maxErrorRate: b.maxErrorRate,
    });
  }
  const mesh = model.budgets?.mesh;
  if (mesh) thresholds.push(...latency(meshOverheadMetric, {}, mesh.p50Ms, mesh.p99Ms));
  return {
    thresholds,
    routes,
    ...(mesh
      ? {
          meshOverhead: {
            metric: meshOverheadMetric,
            p50Ms: mesh.p50Ms,
            p99Ms: mesh.p99Ms,
            ...(mesh.rps !== undefined ? { rps: mesh.rps } : {}),
          },
        }
      : {}),
  };
}
