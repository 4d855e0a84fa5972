/**
 * k6 thresholds from the budgets. Requests must carry the tag `route:<route name>`; threshold keys use
 * k6's tag filter syntax and expressions (`p(99)<=10`, `rate<=0`).
 * https://grafana.com/docs/k6/latest/using-k6/thresholds/
 */
import type { ValidModel } from '../validate.ts';

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
  /** For `options.thresholds`. */
  thresholds: Record<string, string[]>;
  /** The routes with a budget, for building scenarios (constant-arrival-rate at `rps`). */
  routes: K6RouteTarget[];
  /** The per-traversal mesh overhead budget, when the model has one. */
  meshOverhead?: { metric: string; p50Ms: number; p99Ms: number; rps?: number };
}

/** The custom Trend metric a load test records mesh overhead in (milliseconds). */
export const meshOverheadMetric = 'trellis_mesh_overhead';

/** Compiles budgets to k6 thresholds. */
export function compileK6Thresholds(model: ValidModel): K6Thresholds {
  const thresholds: Record<string, string[]> = {};
  const routes: K6RouteTarget[] = [];
  for (const [name, r] of Object.entries(model.routes)) {
    const b = r.budget;
    if (!b) continue;
    const duration = [`p(99)<=${b.p99Ms}`];
    if (b.p50Ms !== undefined) duration.unshift(`p(50)<=${b.p50Ms}`);
    thresholds[`http_req_duration{route:${name}}`] = duration;
    thresholds[`http_req_failed{route:${name}}`] = [`rate<=${b.maxErrorRate}`];
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
  if (mesh) thresholds[meshOverheadMetric] = [`p(50)<=${mesh.p50Ms}`, `p(99)<=${mesh.p99Ms}`];
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
