/**
 * The budgets the SLO rules judge each route by (production's, or an environment's from
 * `budgets.environments`, as the k6 thresholds do; ADR 0025), and the histogram buckets that can
 * count them.
 */
import { productionName } from '../patterns.ts';
import type { Route } from '../schema.ts';
import type { ValidModel } from '../validate.ts';
import { knownEnvironments } from './k6.ts';

/**
 * Envoy's default histogram bucket boundaries in milliseconds (`le` on /stats/prometheus; Envoy 1.40),
 * used unless `stats_config.histogram_bucket_settings` changes them.
 */
export const envoyDefaultBucketsMs: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
];

/** One budgeted route, with the budget the rules judge it by and where that budget is written. */
export interface JudgedRoute {
  name: string;
  budget: NonNullable<Route['budget']>;
  path: (string | number)[];
}

/**
 * Every budgeted route with its budget: production's, or `environment`'s where that environment
 * names the route. Throws, naming the known ones, for an environment the model does not declare.
 */
export function judgedRoutes(model: ValidModel, environment: string | undefined): JudgedRoute[] {
  const envs = model.budgets?.environments ?? {};
  const env =
    environment === undefined || environment === productionName
      ? undefined
      : Object.hasOwn(envs, environment)
        ? envs[environment]
        : undefined;
  if (environment !== undefined && environment !== productionName && env === undefined)
    throw new Error(
      `compileSloRules: environment '${environment}' is not declared in budgets.environments (known: ${knownEnvironments(model).join(', ')})`,
    );
  const out: JudgedRoute[] = [];
  for (const [name, r] of Object.entries(model.routes)) {
    const own = env?.routes && Object.hasOwn(env.routes, name) ? env.routes[name] : undefined;
    if (own && environment !== undefined)
      out.push({
        name,
        budget: own,
        path: ['budgets', 'environments', environment, 'routes', name],
      });
    else if (r.budget) out.push({ name, budget: r.budget, path: ['routes', name, 'budget'] });
  }
  return out;
}

/**
 * The bucket boundaries (ms) the edge's per-route histograms need for the rules to judge
 * `environment`'s budgets exactly: Envoy's defaults plus every judged `p99Ms` that is not one of
 * them, sorted. The edge sidecar gets them as `stats_config.histogram_bucket_settings` and the rules
 * as `metrics.bucketsMs`; with production's budgets (all boundaries) it is Envoy's default list.
 */
export function sloBucketsMs(model: ValidModel, environment?: string): number[] {
  const all = new Set([
    ...envoyDefaultBucketsMs,
    ...judgedRoutes(model, environment).map((r) => r.budget.p99Ms),
  ]);
  return [...all].sort((a, b) => a - b);
}
