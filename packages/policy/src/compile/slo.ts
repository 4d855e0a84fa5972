/**
 * SLO rules from the route budgets: Prometheus recording rules for two SLIs per route, and
 * multi-window, multi-burn-rate alerts on them, as a rule file (groups → rules) and as
 * PrometheusRule objects (monitoring.coreos.com/v1) for the Prometheus Operator.
 *
 * - Availability SLI: 5xx responses / completed requests; its error budget is the route's
 *   `maxErrorRate`.
 * - Latency SLI: requests slower than `p99Ms` / requests; a p99 budget lets 1 % of requests be
 *   slower, so its error budget is 0.01. The histogram counts requests at or under each bucket
 *   boundary (`le`), so `p99Ms` must be a boundary: it is validated, not rounded, because rounding up
 *   to the next bucket would quietly loosen the promise (10 ms → 25 ms with Envoy's buckets).
 * - Load: the request rate is recorded, and a ticket says when it stays above the `rps` the budget
 *   was promised at (above it, burn alerts may say more about capacity than about a regression).
 *
 * Metric source (the contract): Envoy's per-route stats, which Envoy emits for a route that has a
 * `stat_prefix` (`vhost.<vhost>.route.<stat_prefix>.upstream_rq_*`) and names on /stats/prometheus as
 * `envoy_vhost_route_upstream_rq_xx{envoy_response_code_class}`, `…_upstream_rq_completed` and the
 * histogram `envoy_vhost_route_upstream_rq_time_bucket{le}` in milliseconds, each labelled
 * `envoy_virtual_host` and `envoy_route` (checked against Envoy 1.40's admin output; a connect failure
 * counts as a completed 503). The measuring point is the edge sidecar: its routes carry
 * `stat_prefix: <route name>` ({@link routeStatPrefix}), so `envoy_route` is the model's route name.
 * Cluster-level histograms (`envoy_cluster_upstream_rq_time_bucket`,
 * `envoy_http_downstream_rq_time_bucket`) cannot tell two routes to one backend apart.
 */
import { formatPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';
import type { Route } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
import type { ValidModel } from '../validate.ts';
import { checkRegion, meta } from './common.ts';
import { envoyDefaultBucketsMs, judgedRoutes } from './slo-budgets.ts';
import type { ObjectMeta } from './common.ts';
import {
  loadFor,
  scaledBurnWindows,
  sloWindows,
  timeScaleLabel,
  timing,
  type SloTimeScale,
  type Timing,
} from './slo-windows.ts';

export {
  burnWindows,
  durationSeconds,
  formatDuration,
  scaledBurnWindows,
  sloMinSamplesPerWindow,
  sloTimeScaleProblem,
  sloWindows,
} from './slo-windows.ts';
export type { BurnWindow, SloTimeScale } from './slo-windows.ts';
export { envoyDefaultBucketsMs, sloBucketsMs } from './slo-budgets.ts';

/** Where the SLIs come from: metric names and labels. The default is {@link envoyRouteMetrics}. */
export interface SloMetricSource {
  /** Counter of completed requests, per route. */
  requests: string;
  /** Counter of responses by status class; `errorMatchers` narrows it to the errors. */
  responses: string;
  errorMatchers: Record<string, string>;
  /** Histogram of request durations in milliseconds: its `_bucket` and `_count` series. */
  latencyBucket: string;
  latencyCount: string;
  /** The label whose value is the model's route name. */
  routeLabel: string;
  /** Extra matchers on every series, e.g. `{ job: 'ingress' }` to pick the measuring sidecar. */
  matchers: Record<string, string>;
  /** The histogram's bucket boundaries (ms); every `p99Ms` must be one of them. */
  bucketsMs: readonly number[];
}

/** Envoy's per-route stats of the edge sidecar, with Envoy's default buckets. */
export const envoyRouteMetrics: SloMetricSource = {
  requests: 'envoy_vhost_route_upstream_rq_completed',
  responses: 'envoy_vhost_route_upstream_rq_xx',
  errorMatchers: { envoy_response_code_class: '5' },
  latencyBucket: 'envoy_vhost_route_upstream_rq_time_bucket',
  latencyCount: 'envoy_vhost_route_upstream_rq_time_count',
  routeLabel: 'envoy_route',
  matchers: {},
  bucketsMs: envoyDefaultBucketsMs,
};

/** The `stat_prefix` the measuring sidecar's Envoy route must carry for `route` to be measured. */
export function routeStatPrefix(route: string): string {
  return route;
}

/** The error budget of the latency SLI: a p99 lets 1 % of requests be slower. */
export const latencyErrorBudget = 0.01;

/** A Prometheus recording rule. */
export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

/** A Prometheus alerting rule. */
export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A rule group: evaluated in order, so alerts read the recordings made just before them. */
export interface RuleGroup {
  name: string;
  rules: (RecordingRule | AlertingRule)[];
}

/** A Prometheus rule file (`rule_files:`), as YAML or JSON. */
export interface PrometheusRuleFile {
  groups: RuleGroup[];
}

/** monitoring.coreos.com/v1 PrometheusRule: the same groups for the Prometheus Operator. */
export interface PrometheusRule {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'PrometheusRule';
  metadata: ObjectMeta;
  spec: PrometheusRuleFile;
}

/** Options of the SLO compilers. */
export interface SloOptions {
  /** Metric names, labels and buckets, merged over {@link envoyRouteMetrics}. */
  metrics?: Partial<SloMetricSource>;
  /** Scale time for a test stack (ADR 0025). @default no scaling */
  timeScale?: SloTimeScale;
  /**
   * Judge by this environment of `budgets.environments` (e.g. `ci`, the 2-core runner the e2e stack
   * runs on), as `compileK6Thresholds` does: a route it names has that budget, any other keeps its
   * production budget. @default production (the model's own budgets)
   */
  environment?: string;
}

/** Options of `compilePrometheusRules`. */
export interface PrometheusRuleOptions extends SloOptions {
  /** @default the model's namespace */
  namespace?: string;
  region?: string;
  /** Extra object labels, e.g. the one the Operator's `ruleSelector` matches. */
  labels?: Record<string, string>;
}

/** A budget that cannot be compiled to SLO rules, with the field that makes it so. */
export class SloBudgetError extends Error {
  override readonly name = 'SloBudgetError';
  readonly errors: PolicyError[];
  constructor(errors: PolicyError[]) {
    super(errors.map((e) => `${e.path}: ${e.reason}`).join('\n'));
    this.errors = errors;
  }
}

/** Names of the recorded series (level:metric:operations, the Prometheus naming convention). */
export const sloSeries = {
  errorRatio: (w: string) => `route:trellis_slo_errors:ratio_rate${w}`,
  slowRatio: (w: string) => `route:trellis_slo_slow:ratio_rate${w}`,
  requestRate: 'route:trellis_slo_requests:rate5m',
} as const;

/** Alert names, one per SLI; the tier is in the labels. */
export const sloAlerts = {
  availability: 'TrellisRouteErrorBudgetBurn',
  latency: 'TrellisRouteLatencyBudgetBurn',
  load: 'TrellisRouteAboveBudgetedLoad',
} as const;

/** `metric{a="x",b="y"}`, values quoted as PromQL strings (JSON escapes are PromQL escapes). */
function selector(metric: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${metric}{${pairs.join(',')}}`;
}

/** The label value of a bucket boundary as Envoy prints it (`0.5`, `10`, `2500`). */
function le(ms: number): string {
  return String(ms);
}

/** Recording rules of one route: both SLI ratios over every window, and the request rate. */
function recordings(name: string, m: SloMetricSource, p99Ms: number, t: Timing): RecordingRule[] {
  const on = { ...m.matchers, [m.routeLabel]: name };
  const rate = (metric: string, extra: Record<string, string>, w: string) =>
    `sum(rate(${selector(metric, { ...on, ...extra })}[${w}]))`;
  // a fresh object per rule, so YAML output has no anchors
  const labels = () => ({ route: name });
  const rules: RecordingRule[] = [];
  for (const w of sloWindows().map(t.at)) {
    rules.push({
      record: sloSeries.errorRatio(w),
      // `or vector(0)`: no 5xx series yet reads as 0 errors, while no traffic stays absent.
      expr: `(${rate(m.responses, m.errorMatchers, w)} or vector(0)) / ${rate(m.requests, {}, w)}`,
      labels: labels(),
    });
    rules.push({
      record: sloSeries.slowRatio(w),
      expr: `1 - ${rate(m.latencyBucket, { le: le(p99Ms) }, w)} / ${rate(m.latencyCount, {}, w)}`,
      labels: labels(),
    });
  }
  // The request rate keeps its name (`rate5m`) whatever the scale; its window scales like the rest.
  rules.push({
    record: sloSeries.requestRate,
    expr: rate(m.requests, {}, t.at('5m')),
    labels: labels(),
  });
  return rules;
}

/** The multi-window alerts of one SLI of one route, one per tier. */
function burnAlerts(
  name: string,
  sli: 'availability' | 'latency',
  budget: number,
  describe: string,
  t: Timing,
): AlertingRule[] {
  const series = sli === 'availability' ? sloSeries.errorRatio : sloSeries.slowRatio;
  const on = selector('', { route: name });
  const period = t.factor === 1 ? '30-day' : `${t.at('30d')} (30 days at time scale 1/${t.factor})`;
  return scaledBurnWindows(t.factor).map((w) => {
    // Written as factor * budget so that the rule reads as the table does (and stays exact).
    const over = `> (${w.factor} * ${budget})`;
    return {
      alert: sloAlerts[sli],
      expr: `${series(w.long)}${on} ${over}\nand\n${series(w.short)}${on} ${over}`,
      labels: {
        severity: w.severity,
        route: name,
        slo: sli,
        long_window: w.long,
        short_window: w.short,
        burn_rate: String(w.factor),
        ...(t.factor === 1 ? {} : { [timeScaleLabel]: String(t.factor) }),
      },
      annotations: {
        summary: `${name}: ${sli} error budget burning at over ${w.factor}x`,
        description:
          `${describe} At over ${w.factor}x for ${w.long} (and still over it in the last ${w.short}), ` +
          `${w.budgetSpent * 100}% of a ${period} budget is gone.`,
      },
    };
  });
}

/** Everything of one budgeted route: recordings, then the burn alerts of both SLIs, then load. */
function routeGroup(
  name: string,
  budget: NonNullable<Route['budget']>,
  m: SloMetricSource,
  t: Timing,
) {
  const errors =
    budget.maxErrorRate === 0
      ? 'The budget allows no errors (maxErrorRate 0), so any 5xx in both windows alerts.'
      : `The budget allows ${Number((budget.maxErrorRate * 100).toPrecision(6))}% of requests to fail (5xx).`;
  const latency = `The budget is p99 <= ${budget.p99Ms} ms: at most 1% of requests slower.`;
  const load: AlertingRule = {
    alert: sloAlerts.load,
    expr: `${sloSeries.requestRate}${selector('', { route: name })} > ${budget.rps}`,
    for: t.at(loadFor),
    labels: {
      severity: 'ticket',
      route: name,
      slo: 'load',
      ...(t.factor === 1 ? {} : { [timeScaleLabel]: String(t.factor) }),
    },
    annotations: {
      summary: `${name}: above the ${budget.rps} rps its budget was promised at`,
      description: `The route's latency and error budgets hold up to ${budget.rps} requests per second; beyond it, plan capacity or raise the budget.`,
    },
  };
  return {
    name: `trellis-slo-${name}`,
    rules: [
      ...recordings(name, m, budget.p99Ms, t),
      ...burnAlerts(name, 'availability', budget.maxErrorRate, errors, t),
      ...burnAlerts(name, 'latency', latencyErrorBudget, latency, t),
      load,
    ],
  };
}

/** The metric source with `opts` applied, and the budgets it cannot measure. */
function source(model: ValidModel, opts: SloOptions): SloMetricSource {
  const m: SloMetricSource = { ...envoyRouteMetrics, ...opts.metrics };
  const errors: PolicyError[] = [];
  for (const { budget, path } of judgedRoutes(model, opts.environment)) {
    if (m.bucketsMs.includes(budget.p99Ms)) continue;
    const p99 = budget.p99Ms;
    // the nearest boundaries on each side (the buckets given need not be sorted)
    const nearest = [
      Math.max(...m.bucketsMs.filter((b) => b < p99)),
      Math.min(...m.bucketsMs.filter((b) => b > p99)),
    ].filter(Number.isFinite);
    errors.push({
      path: formatPath([...path, 'p99Ms']),
      reason:
        `${p99} ms is not a bucket boundary of ${m.latencyBucket}, so the share of requests ` +
        `over it cannot be counted; use ${nearest.join(' or ')} ms, ` +
        'or add it to the histogram buckets',
    });
  }
  if (errors.length > 0) throw new SloBudgetError(errors);
  return m;
}

/**
 * A Prometheus rule file with one group per route that has a budget. Throws {@link SloBudgetError},
 * naming each `routes.<name>.budget.p99Ms` that is not a bucket boundary, and an Error naming
 * `timeScale.factor` for a time scale {@link sloTimeScaleProblem} refuses.
 */
export function compileSloRules(model: BoundModel, opts: SloOptions = {}): PrometheusRuleFile {
  const t = timing(opts.timeScale);
  const m = source(model, opts);
  return {
    groups: judgedRoutes(model, opts.environment).map((r) => routeGroup(r.name, r.budget, m, t)),
  };
}

/** The same rules as PrometheusRule objects, one per budgeted route, for the k8s stack. */
export function compilePrometheusRules(
  model: BoundModel,
  opts: PrometheusRuleOptions = {},
): PrometheusRule[] {
  checkRegion(model, opts.region);
  const namespace = opts.namespace ?? model.namespace;
  return compileSloRules(model, opts).groups.map((g) => {
    const metadata = meta(g.name, namespace, opts.region);
    // Trellis's own labels win over extra ones of the same key.
    metadata.labels = { ...opts.labels, ...metadata.labels };
    return {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata,
      spec: { groups: [g] },
    };
  });
}
