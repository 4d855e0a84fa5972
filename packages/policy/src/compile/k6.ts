/**
 * k6 thresholds from the budgets, as data: which metric (narrowed by tags to one route's requests,
 * which must carry the tag `route:<route name>`), which statistic, compared how with what value. The
 * k6 edge (load-tests) renders them in k6's syntax (`http_req_duration{route:x}`: `p(99)<=10`) and adds
 * the run's own filters and abort settings.
 * https://grafana.com/docs/k6/latest/using-k6/thresholds/
 */
import { productionName } from '../patterns.ts';
import type { EnvironmentBudgets, RouteBudget } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
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

/** A route's budget as the compiler hands it on (production's, or one environment's). */
export interface K6Budget {
  rps: number;
  p50Ms?: number;
  p99Ms: number;
  maxErrorRate: number;
}

/** The mesh budget per Envoy traversal as the compiler hands it on. */
export interface K6MeshBudget {
  p50Ms: number;
  p99Ms: number;
  rps?: number;
}

/**
 * One route's load target. The top-level budget fields are the ones the run is judged by: the
 * environment's budget when the environment names the route, else production's. `production` is
 * always the model's own budget, so a report can show both.
 */
export interface K6RouteTarget extends K6Budget {
  route: string;
  method: string;
  path: string;
  hosts: string[];
  /** The environment whose budget judges this route; absent when production's does. */
  environment?: string;
  /** The route's production budget (`routes.<name>.budget`), never changed by an environment. */
  production: K6Budget;
}

/** The environment a compilation judges by, as the model declares it. */
export interface K6Environment {
  name: string;
  description?: string;
  justification: string;
}

/** What `compileK6Thresholds` returns. */
export interface K6Thresholds {
  /** Every budget as a threshold, route by route (duration, then failures), then the mesh overhead. */
  thresholds: K6Threshold[];
  /** The routes with a budget, for building scenarios (constant-arrival-rate at `rps`). */
  routes: K6RouteTarget[];
  /**
   * The per-traversal mesh overhead budget the run is judged by, when the model has one; `production`
   * is `budgets.mesh`, and `environment` names the environment when its budget judges.
   */
  meshOverhead?: K6MeshBudget & {
    metric: string;
    environment?: string;
    production: K6MeshBudget;
  };
  /** The environment of `budgets.environments` this compilation judges by, when one was asked for. */
  environment?: K6Environment;
}

/** Options of {@link compileK6Thresholds}. */
export interface K6Options {
  /**
   * Judge by this environment of `budgets.environments` (e.g. `ci`): its budgets replace production's
   * in the thresholds for the routes (and mesh) it names; production's are still in the output.
   * `production` names the model's own budgets (the same as leaving it out).
   * @default production budgets only
   */
  environment?: string;
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

/** A budget as plain data, without undefined fields. */
function budgetOf(b: RouteBudget): K6Budget {
  return {
    rps: b.rps,
    ...(b.p50Ms !== undefined ? { p50Ms: b.p50Ms } : {}),
    p99Ms: b.p99Ms,
    maxErrorRate: b.maxErrorRate,
  };
}

function meshOf(b: K6MeshBudget): K6MeshBudget {
  return { p50Ms: b.p50Ms, p99Ms: b.p99Ms, ...(b.rps !== undefined ? { rps: b.rps } : {}) };
}

/** The names a run can be judged by: `production` (the model's own budgets), then the declared ones. */
export function knownEnvironments(model: ValidModel): string[] {
  return [productionName, ...Object.keys(model.budgets?.environments ?? {})];
}

/**
 * The environment's budgets; undefined for `production` (the model's own budgets, which every
 * compilation carries anyway); an error naming the known environments for any other name.
 */
function environmentOf(model: ValidModel, name: string): EnvironmentBudgets | undefined {
  if (name === productionName) return undefined;
  const envs = model.budgets?.environments ?? {};
  const e = Object.hasOwn(envs, name) ? envs[name] : undefined;
  if (!e)
    throw new Error(
      `compileK6Thresholds: environment '${name}' is not declared in budgets.environments (known: ${knownEnvironments(model).join(', ')}; ${productionName} is the model's own budgets)`,
    );
  return e;
}

/**
 * Compiles budgets to k6 thresholds: production's, or those of `o.environment` where it has one (a
 * route or the mesh it does not name keeps its production budget). Throws when the environment is
 * not declared.
 */
export function compileK6Thresholds(model: BoundModel, o: K6Options = {}): K6Thresholds {
  const env = o.environment !== undefined ? environmentOf(model, o.environment) : undefined;
  // `production` judges by the model's own budgets: the output is the same as without an environment.
  const envName = env ? o.environment : undefined;
  const thresholds: K6Threshold[] = [];
  const routes: K6RouteTarget[] = [];
  for (const [name, r] of Object.entries(model.routes)) {
    if (!r.budget) continue;
    const production = budgetOf(r.budget);
    const own = env?.routes && Object.hasOwn(env.routes, name) ? env.routes[name] : undefined;
    const b = own ? budgetOf(own) : production;
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
      ...b,
      ...(own && envName !== undefined ? { environment: envName } : {}),
      production,
    });
  }
  const production = model.budgets?.mesh ? meshOf(model.budgets.mesh) : undefined;
  const envMesh = env?.mesh ? meshOf(env.mesh) : undefined;
  const mesh = envMesh ?? production;
  if (mesh) thresholds.push(...latency(meshOverheadMetric, {}, mesh.p50Ms, mesh.p99Ms));
  return {
    thresholds,
    routes,
    // Validation refuses an environment's mesh budget without a production one.
    ...(mesh && production
      ? {
          meshOverhead: {
            metric: meshOverheadMetric,
            ...mesh,
            ...(envMesh && envName !== undefined ? { environment: envName } : {}),
            production,
          },
        }
      : {}),
    ...(env && envName !== undefined
      ? {
          environment: {
            name: envName,
            ...(env.description !== undefined ? { description: env.description } : {}),
            justification: env.justification,
          },
        }
      : {}),
  };
}
