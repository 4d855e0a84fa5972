/**
 * Dashboards as Prometheus console templates (issue 15, item 4; ADR 0024): one console per budgeted
 * route (request rate, error ratio, p99 against the budget, the SLO burn rates of the recording
 * rules), one per hop (each sidecar, Cassandra, Kafka, Keycloak) and an index, compiled from the
 * bound model, its SLO rules and its scrape jobs. Prometheus renders them at `/consoles/<file>`
 * (`--web.console.templates`), with Debian's `prom.lib` and this compiler's `trellis.lib` as the
 * libraries (`--web.console.libraries`): `prom.lib` gives the page head (Rickshaw, the graph
 * library), the query drill-down links and the time control; `trellis.lib` the navigation bar and
 * the menu (instead of Debian's `menu.lib`, which links to the node exporter's consoles and
 * PagerDuty).
 *
 * Every value in a console is a PromQL query that reads only a recording rule of
 * {@link compileSloRules} or a series of a compiled scrape job, each with its `job` label: a
 * console can never name a series the stack does not collect (the unit test checks each query
 * against the compiled rules and jobs). Tables are evaluated by Prometheus at render time
 * (`query`); graphs are drawn by the browser (`PromConsole.Graph`, Prometheus's classic console
 * library). Template syntax: Go's text/template with Prometheus's functions
 * (https://prometheus.io/docs/visualization/consoles/, /docs/prometheus/2.42/configuration/template_reference/).
 */
import type { BoundModel } from '../bind/types.ts';
import { edgeWorkloads } from '../identity.ts';
import { esc, goString, hopBody, page, routeLabel, sel, type Hop } from './consoles/html.ts';
import { serverHop, sidecarHop } from './consoles/hops.ts';
import { routeBody, routeP99 } from './consoles/routes.ts';
import type { PrometheusScrapeFile } from './prometheus.ts';
import { scrapeJobs } from './prometheus.ts';
import {
  compileSloRules,
  envoyRouteMetrics,
  sloSeries,
  type SloMetricSource,
  type SloOptions,
} from './slo.ts';
import { judgedRoutes } from './slo-budgets.ts';
import { timing, type Timing } from './slo-windows.ts';

export { consoleSourceMetrics } from './consoles/hops.ts';

/** Options of {@link compileConsoles}. */
export interface ConsoleOptions {
  /** The SLO rules' options (metric source), as given to `compileSloRules`. @default none */
  slo?: SloOptions;
}

/** What {@link compileConsoles} writes. */
export interface CompiledConsoles {
  /** `--web.console.templates`: file name → template (`index.html`, `route-<r>.html`, `hop-<h>.html`). */
  consoles: Record<string, string>;
  /** `--web.console.libraries` beside Debian's `prom.lib`: `trellis.lib`. */
  libraries: Record<string, string>;
  /** Every PromQL query the consoles evaluate or graph, for checks. */
  queries: string[];
}

/** The console of a route, and of a hop (a workload's sidecar or a server). */
export const consoleFiles = {
  index: 'index.html',
  route: (route: string) => `route-${route}.html`,
  hop: (hop: string) => `hop-${hop}.html`,
} as const;

const drilldown = (expr: string, suffix = '') =>
  `{{ template "prom_query_drilldown" (args ${goString(expr)} ${goString(suffix)} "printf.3g") }}`;
const hopLabel = (h: Hop) => h.title.replace(/^Hop: /, '');

/** A measured route: its name, the model's route, the budget the rules judge it by. */
type Measured = [
  string,
  BoundModel['routes'][string],
  NonNullable<BoundModel['routes'][string]['budget']>,
][];

function indexPage(
  model: BoundModel,
  routes: Measured,
  hops: Hop[],
  source: SloMetricSource,
  t: Timing,
  queries: string[],
): string {
  const unmeasured = Object.keys(model.routes).filter((n) => !routes.some(([m]) => m === n));
  const edge = edgeWorkloads(model)[0];
  const routeRow = ([name, r, budget]: Measured[number]) => {
    const rate = sel(sloSeries.requestRate, { route: name });
    const p99 = routeP99(source, name, t);
    queries.push(rate, p99);
    return `<tr><td><a href="${consoleFiles.route(name)}">${esc(name)}</a></td><td>${esc(routeLabel(r))}</td><td>${drilldown(rate)}</td><td>${drilldown(p99, ' ms')}</td><td>${budget.rps} rps, p99 ≤ ${budget.p99Ms} ms</td></tr>`;
  };
  const hopRow = (h: Hop) => {
    const up = sel('up', { job: h.job });
    queries.push(up);
    return `<tr><td><a href="${consoleFiles.hop(h.name)}">${esc(hopLabel(h))}</a></td><td>${drilldown(up)}</td></tr>`;
  };
  return [
    `<p>Consoles compiled from the model (trust domain ${esc(model.trustDomain)}, ${esc(model.binding.environment)} environment). Values are evaluated when the page loads; graphs cover the time range below.</p>`,
    '<h2>Routes</h2>',
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th>route</th><th>request</th><th>req/s (5m)</th><th>p99 (5m)</th><th>budget</th></tr>',
    ...routes.map(routeRow),
    '</table>',
    ...(unmeasured.length > 0
      ? [`<p>Without a budget, so not measured per route: ${unmeasured.map(esc).join(', ')}.</p>`]
      : []),
    '<h2>Hops</h2>',
    `<p>A request's path: nginx → ${esc(edge ?? 'the edge')}'s sidecar → the backend's sidecar → Cassandra and Kafka; tokens come from Keycloak.</p>`,
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th>hop</th><th>scrape up</th></tr>',
    ...hops.map(hopRow),
    '</table>',
    '<p><a href="{{ pathPrefix }}/alerts">Alerts</a> · <a href="{{ pathPrefix }}/targets">Scrape targets</a> · <a href="{{ pathPrefix }}/rules">SLO rules</a></p>',
  ].join('\n');
}

/**
 * `trellis.lib`: the navigation bar, in place of Debian's menu.lib (which links to node-exporter
 * consoles and PagerDuty), and an empty left menu: Debian's floats beside the content and squeezes
 * it; the index links every console instead.
 */
function navLib(): string {
  const link = (path: string, label: string) =>
    `<li class="nav-item"><a class="nav-link" href="{{ pathPrefix }}${path}">${label}</a></li>`;
  return [
    '{{/* Written by Trellis (packages/policy/src/compile/consoles.ts): the navigation bar of its consoles. */}}',
    '{{ define "navbar" }}',
    '<nav class="navbar fixed-top navbar-expand-sm navbar-dark bg-dark">',
    '<div class="container-fluid">',
    `<a class="navbar-brand" href="{{ pathPrefix }}/consoles/${consoleFiles.index}">Trellis</a>`,
    '<ul class="nav navbar-nav mr-auto">',
    link(`/consoles/${consoleFiles.index}`, 'Routes and hops'),
    link('/alerts', 'Alerts'),
    link('/targets', 'Targets'),
    link('/graph', 'Graph'),
    '</ul>',
    '</div>',
    '</nav>',
    '{{ end }}',
    '{{ define "menu" }}{{ end }}',
    '',
  ].join('\n');
}

/**
 * The consoles of `model` for a Prometheus that runs `scrape` and the SLO rules of
 * `compileSloRules(model, opts.slo)`: an index, a console per budgeted route, a console per
 * scraped hop. Throws (naming the field) as `compileSloRules` does on a budget it cannot measure.
 */
export function compileConsoles(
  model: BoundModel,
  scrape: PrometheusScrapeFile,
  opts: ConsoleOptions = {},
): CompiledConsoles {
  const measured = new Set(
    compileSloRules(model, opts.slo).groups.flatMap((g) =>
      g.rules.flatMap((r) => ('record' in r && r.labels?.route ? [r.labels.route] : [])),
    ),
  );
  const jobs = new Set(scrape.scrape_configs.map((j) => j.job_name));
  const source: SloMetricSource = { ...envoyRouteMetrics, ...opts.slo?.metrics };
  const queries: string[] = [];
  const consoles: Record<string, string> = {};
  const t = timing(opts.slo?.timeScale);
  const routes: Measured = judgedRoutes(model, opts.slo?.environment).flatMap((j) => {
    const r = model.routes[j.name];
    return r !== undefined && measured.has(j.name) ? [[j.name, r, j.budget] as const] : [];
  }) as Measured;
  for (const [name, r, budget] of routes)
    consoles[consoleFiles.route(name)] = page(
      `Route: ${name}`,
      routeBody(name, r, budget, source, t, queries),
    );
  const hops: Hop[] = [
    ...Object.keys(model.workloads)
      .sort()
      .filter((w) => jobs.has(scrapeJobs.envoy(w)))
      .map((w) => sidecarHop(model, w)),
    ...(['cassandra', 'kafka', 'keycloak'] as const)
      .filter((s) => jobs.has(scrapeJobs.server(s)))
      .map(serverHop),
  ];
  for (const h of hops) consoles[consoleFiles.hop(h.name)] = page(h.title, hopBody(h, queries));
  consoles[consoleFiles.index] = page(
    'Trellis',
    indexPage(model, routes, hops, source, t, queries),
  );
  return { consoles, libraries: { 'trellis.lib': navLib() }, queries };
}
