/**
 * The console of a budgeted route (see ../consoles.ts): its SLIs against the budget, from the SLO
 * recording rules, and the measured p99 from the edge sidecar's per-route histogram.
 */
import type { Route } from '../../schema.ts';
import { latencyErrorBudget, sloSeries, type SloMetricSource } from '../slo.ts';
import { scaledBurnWindows, type Timing } from '../slo-windows.ts';
import { esc, graphs, routeLabel, sel, table, type Graph, type Row } from './html.ts';

type Budget = NonNullable<Route['budget']>;

/**
 * The p99 of `route` over 5 m (scaled as the rules are), from the SLO source's histogram
 * (milliseconds).
 */
export function routeP99(source: SloMetricSource, route: string, t: Timing): string {
  const bucket = sel(source.latencyBucket, { ...source.matchers, [source.routeLabel]: route });
  return `histogram_quantile(0.99, sum by (le) (rate(${bucket}[${t.at('5m')}])))`;
}

/** Every burn window of both SLIs (the 5xx ratio itself when the route allows no errors). */
function burnRows(route: string, errorBudget: number, t: Timing): Row[] {
  const on = { route };
  return scaledBurnWindows(t.factor).flatMap((b): Row[] => [
    {
      label: `slow burn ${b.long} (${b.severity} above ${b.factor})`,
      expr: `${sel(sloSeries.slowRatio(b.long), on)} / ${latencyErrorBudget}`,
      suffix: '×',
      note: `alerts when ${b.long} and ${b.short} both exceed ${b.factor}× the 1 % budget`,
    },
    errorBudget > 0
      ? {
          label: `error burn ${b.long} (${b.severity} above ${b.factor})`,
          expr: `${sel(sloSeries.errorRatio(b.long), on)} / ${errorBudget}`,
          suffix: '×',
          note: `budget: ${errorBudget} of requests may fail`,
        }
      : {
          label: `5xx ratio ${b.long}`,
          expr: sel(sloSeries.errorRatio(b.long), on),
          format: 'humanizePercentage',
          note: 'maxErrorRate 0: any 5xx in both windows alerts',
        },
  ]);
}

function routeRows(route: string, budget: Budget, p99: string, t: Timing): Row[] {
  const on = { route };
  const w = t.at('5m');
  return [
    {
      label: `request rate (${w})`,
      expr: sel(sloSeries.requestRate, on),
      suffix: ' req/s',
      note: `budget: ${budget.rps} rps`,
    },
    {
      label: `error ratio (${w})`,
      expr: sel(sloSeries.errorRatio(w), on),
      format: 'humanizePercentage',
      note: `budget: ${budget.maxErrorRate}`,
    },
    { label: `p99 (${w})`, expr: p99, suffix: ' ms', note: `budget: ${budget.p99Ms} ms` },
    {
      label: `slower than ${budget.p99Ms} ms (${w})`,
      expr: sel(sloSeries.slowRatio(w), on),
      format: 'humanizePercentage',
      note: 'budget: 1 %',
    },
    {
      label: 'alerts firing',
      expr: `count(${sel('ALERTS', { route, alertstate: 'firing' })}) or vector(0)`,
    },
    ...burnRows(route, budget.maxErrorRate, t),
  ];
}

function routeGraphs(route: string, budget: Budget, p99: string, t: Timing): Graph[] {
  const on = { route };
  const windows = scaledBurnWindows(t.factor);
  return [
    {
      title: 'Request rate',
      exprs: [sel(sloSeries.requestRate, on)],
      names: ['req/s'],
      yUnits: 'req/s',
      min: 0,
    },
    {
      title: `p99 against the budget (${budget.p99Ms} ms)`,
      exprs: [p99, `vector(${budget.p99Ms})`],
      names: ['p99', 'budget'],
      yUnits: 'ms',
      min: 0,
    },
    {
      title: 'Burn rates of the latency budget (1 = spending it exactly)',
      exprs: windows.map((b) => `${sel(sloSeries.slowRatio(b.long), on)} / ${latencyErrorBudget}`),
      names: windows.map((b) => b.long),
      min: 0,
    },
    {
      title: 'Error ratio',
      exprs: [sel(sloSeries.errorRatio(t.at('5m')), on), sel(sloSeries.errorRatio(t.at('1h')), on)],
      names: [t.at('5m'), t.at('1h')],
      min: 0,
    },
  ];
}

/**
 * The body of `route`'s console, judged by `budget` (production's or the rules' environment's) on
 * the rules' time scale `t` (its queries are appended to `queries`).
 */
export function routeBody(
  route: string,
  r: Route,
  budget: Budget,
  source: SloMetricSource,
  t: Timing,
  queries: string[],
): string {
  const p99 = routeP99(source, route, t);
  return [
    `<p>${esc(routeLabel(r))}; budget ${budget.rps} rps, p99 ≤ ${budget.p99Ms} ms, errors ≤ ${budget.maxErrorRate}. Measured at the edge sidecar (Envoy's per-route statistics)${t.factor === 1 ? '' : `; a test stack's rules, every window divided by ${t.factor}`}.</p>`,
    table(routeRows(route, budget, p99, t), queries),
    graphs(routeGraphs(route, budget, p99, t), 'g_route_', queries),
  ].join('\n');
}
