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
import { edgeWorkloads, type MetricsServer } from '../identity.ts';
import type { Route } from '../schema.ts';
import type { PrometheusScrapeFile } from './prometheus.ts';
import { scrapeJobs } from './prometheus.ts';
import {
  burnWindows,
  compileSloRules,
  envoyRouteMetrics,
  latencyErrorBudget,
  sloSeries,
  type SloOptions,
} from './slo.ts';

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

/** Series the hop consoles read from the scrape jobs, by source. */
export const consoleSourceMetrics = {
  envoy: [
    'envoy_http_downstream_rq_total',
    'envoy_http_downstream_rq_xx',
    'envoy_http_downstream_rq_time_bucket',
    'envoy_cluster_upstream_rq_total',
    'envoy_cluster_upstream_cx_total',
    'envoy_cluster_upstream_cx_connect_fail',
    'envoy_server_memory_allocated',
  ],
  cassandra: [
    'cassandra_client_requests_total',
    'cassandra_client_request_latency_seconds',
    'jvm_memory_used_bytes',
  ],
  kafka: [
    'kafka_network_requests_total',
    'kafka_network_request_total_time_ms',
    'kafka_server_messages_in_total',
    'kafka_server_under_replicated_partitions',
    'jvm_memory_used_bytes',
  ],
  keycloak: [
    'keycloak_user_events_total',
    'http_server_requests_seconds_count',
    'jvm_memory_used_bytes',
  ],
} as const;

/** One row of a console's table: a label, a query and how to print its first value. */
interface Row {
  label: string;
  expr: string;
  /** Appended to the value. */
  suffix?: string;
  /** A template of prom.lib that formats the value. @default 'printf.3g' */
  format?: string;
  /** Printed in the last column (the budget, the threshold). */
  note?: string;
}

/** One graph: one or more queries over the console's time range. */
interface Graph {
  title: string;
  exprs: string[];
  /** Legend per query; `[[label]]` is replaced by the label's value. */
  names: string[];
  yUnits?: string;
  min?: number;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A PromQL string as a Go template string literal (the queries use single quotes only). */
const goString = (expr: string): string => {
  if (expr.includes('"') || expr.includes('\\') || expr.includes('{{') || expr.includes('}}'))
    throw new Error(`compileConsoles: a query may not contain '"', '\\', '{{' or '}}': ${expr}`);
  return `"${expr}"`;
};

/** `name{k='v', …}`: label values in single quotes, so that a query fits in a Go string literal. */
function sel(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => {
    const op = v.startsWith('!') ? '!=' : '=';
    const value = v.startsWith('!') ? v.slice(1) : v;
    if (/['\\]/.test(value)) throw new Error(`compileConsoles: label ${k} has a quote: ${value}`);
    return `${k}${op}'${value}'`;
  });
  return `${name}{${parts.join(',')}}`;
}

function table(rows: Row[], queries: string[]): string {
  const lines = rows.map((r) => {
    queries.push(r.expr);
    const cell = `{{ template "prom_query_drilldown" (args ${goString(r.expr)} ${goString(r.suffix ?? '')} "${r.format ?? 'printf.3g'}") }}`;
    return `<tr><th>${esc(r.label)}</th><td>${cell}</td><td>${esc(r.note ?? '')}</td></tr>`;
  });
  return [
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th></th><th>now</th><th>budget / note</th></tr>',
    ...lines,
    '</table>',
  ].join('\n');
}

function graphs(list: Graph[], prefix: string, queries: string[]): string {
  return list
    .map((g, i) => {
      queries.push(...g.exprs);
      const id = `${prefix}${i}`;
      const js = (v: unknown) => JSON.stringify(v);
      return [
        `<h3>${esc(g.title)}</h3>`,
        `<div id="${id}"></div>`,
        '<script>',
        'new PromConsole.Graph({',
        `  node: document.querySelector(${js(`#${id}`)}),`,
        `  expr: ${js(g.exprs)},`,
        `  name: ${js(g.names)},`,
        `  yUnits: ${js(g.yUnits ?? '')},`,
        ...(g.min !== undefined ? [`  min: ${g.min},`] : []),
        '  yAxisFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,',
        '  yHoverFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,',
        '});',
        '</script>',
      ].join('\n');
    })
    .join('\n');
}

function page(title: string, body: string): string {
  return [
    '{{ template "head" . }}',
    '{{ template "prom_content_head" . }}',
    `<h1>${esc(title)}</h1>`,
    body,
    '{{ template "prom_content_tail" . }}',
    '{{ template "tail" }}',
    '',
  ].join('\n');
}

const routeLabel = (r: Route) => `${r.method} ${r.path} → ${r.backend}:${r.port}`;

interface Hop {
  name: string;
  /** The scrape job it reads. */
  job: string;
  title: string;
  body: (queries: string[]) => string;
}

function sidecarHop(model: BoundModel, w: string): Hop {
  const job = scrapeJobs.envoy(w);
  // The metrics listener's own requests (the scrapes) are left out of the traffic.
  const http = { job, envoy_http_conn_manager_prefix: '!metrics' };
  const edge = model.workloads[w]?.edge === true;
  return {
    name: w,
    job,
    title: `Hop: ${w}'s sidecar${edge ? ' (the edge, behind nginx)' : ''}`,
    body: (q) =>
      [
        table(
          [
            { label: 'scrape up', expr: sel('up', { job }) },
            {
              label: 'requests in (5m)',
              expr: `sum(rate(${sel('envoy_http_downstream_rq_total', http)}[5m]))`,
              suffix: ' req/s',
            },
            {
              label: '4xx (5m): refused by JWT, RBAC or the route',
              expr: `sum(rate(${sel('envoy_http_downstream_rq_xx', { ...http, envoy_response_code_class: '4' })}[5m]))`,
              suffix: ' req/s',
            },
            {
              label: '5xx (5m)',
              expr: `sum(rate(${sel('envoy_http_downstream_rq_xx', { ...http, envoy_response_code_class: '5' })}[5m]))`,
              suffix: ' req/s',
            },
            {
              label: 'p99 through the sidecar (5m)',
              expr: `histogram_quantile(0.99, sum by (le) (rate(${sel('envoy_http_downstream_rq_time_bucket', http)}[5m])))`,
              suffix: ' ms',
              note: 'production budget per traversal: p99 ≤ 1 ms (docs/performance.md)',
            },
            {
              label: 'connect failures upstream (5m)',
              expr: `sum(rate(${sel('envoy_cluster_upstream_cx_connect_fail', { job })}[5m]))`,
              suffix: ' /s',
            },
            {
              label: 'memory allocated',
              expr: sel('envoy_server_memory_allocated', { job }),
              suffix: 'B',
              format: 'humanize1024',
            },
          ],
          q,
        ),
        graphs(
          [
            {
              title: 'Requests in, by response class',
              exprs: [
                `sum by (envoy_response_code_class) (rate(${sel('envoy_http_downstream_rq_xx', http)}[5m]))`,
              ],
              names: ['[[envoy_response_code_class]]xx'],
              yUnits: 'req/s',
              min: 0,
            },
            {
              title: 'p99 through the sidecar',
              exprs: [
                `histogram_quantile(0.99, sum by (le) (rate(${sel('envoy_http_downstream_rq_time_bucket', http)}[5m])))`,
              ],
              names: ['p99'],
              yUnits: 'ms',
              min: 0,
            },
            {
              title: 'Upstream requests and connections, by cluster',
              exprs: [
                `sum by (envoy_cluster_name) (rate(${sel('envoy_cluster_upstream_rq_total', { job })}[5m]))`,
                `sum by (envoy_cluster_name) (rate(${sel('envoy_cluster_upstream_cx_total', { job })}[5m]))`,
              ],
              names: ['[[envoy_cluster_name]] requests', '[[envoy_cluster_name]] connections'],
              yUnits: '/s',
              min: 0,
            },
          ],
          `g_${w}_`,
          q,
        ),
      ].join('\n'),
  };
}

function serverHop(server: MetricsServer): Hop {
  const job = scrapeJobs.server(server);
  const heap = {
    label: 'JVM heap used',
    expr: `sum(${sel('jvm_memory_used_bytes', { job, area: 'heap' })})`,
    suffix: 'B',
    format: 'humanize1024',
  };
  const up = { label: 'scrape up', expr: sel('up', { job }) };
  const heapGraph: Graph = {
    title: 'JVM heap used',
    exprs: [heap.expr],
    names: ['heap'],
    yUnits: 'B',
    min: 0,
  };
  if (server === 'cassandra')
    return {
      name: server,
      job,
      title: 'Hop: Cassandra',
      body: (q) =>
        [
          table(
            [
              up,
              {
                label: 'reads (5m)',
                expr: `sum(rate(${sel('cassandra_client_requests_total', { job, scope: 'Read' })}[5m]))`,
                suffix: ' /s',
              },
              {
                label: 'writes (5m)',
                expr: `sum(rate(${sel('cassandra_client_requests_total', { job, scope: 'Write' })}[5m]))`,
                suffix: ' /s',
              },
              {
                label: 'write p99 (the node’s recent window)',
                expr: `max(${sel('cassandra_client_request_latency_seconds', { job, scope: 'Write', quantile: '0.99' })}) * 1000`,
                suffix: ' ms',
              },
              heap,
            ],
            q,
          ),
          graphs(
            [
              {
                title: 'Client requests, by kind',
                exprs: [
                  `sum by (scope) (rate(${sel('cassandra_client_requests_total', { job })}[5m]))`,
                ],
                names: ['[[scope]]'],
                yUnits: '/s',
                min: 0,
              },
              heapGraph,
            ],
            'g_cassandra_',
            q,
          ),
        ].join('\n'),
    };
  if (server === 'kafka')
    return {
      name: server,
      job,
      title: 'Hop: Kafka',
      body: (q) =>
        [
          table(
            [
              up,
              {
                label: 'records in (5m)',
                expr: `sum(rate(${sel('kafka_server_messages_in_total', { job })}[5m]))`,
                suffix: ' /s',
              },
              {
                label: 'produce requests (5m)',
                expr: `sum(rate(${sel('kafka_network_requests_total', { job, request: 'Produce' })}[5m]))`,
                suffix: ' /s',
              },
              {
                label: 'produce p99 (the broker’s recent window)',
                expr: `max(${sel('kafka_network_request_total_time_ms', { job, request: 'Produce', quantile: '0.99' })})`,
                suffix: ' ms',
              },
              {
                label: 'under-replicated partitions',
                expr: `max(${sel('kafka_server_under_replicated_partitions', { job })})`,
                note: '0 when healthy',
              },
              heap,
            ],
            q,
          ),
          graphs(
            [
              {
                title: 'Requests, by kind',
                exprs: [
                  `sum by (request) (rate(${sel('kafka_network_requests_total', { job })}[5m]))`,
                ],
                names: ['[[request]]'],
                yUnits: '/s',
                min: 0,
              },
              heapGraph,
            ],
            'g_kafka_',
            q,
          ),
        ].join('\n'),
    };
  return {
    name: server,
    job,
    title: 'Hop: Keycloak (the identity provider)',
    body: (q) =>
      [
        table(
          [
            up,
            {
              label: 'logins (5m)',
              expr: `sum(rate(${sel('keycloak_user_events_total', { job, event: 'login', error: '' })}[5m]))`,
              suffix: ' /s',
            },
            {
              label: 'token grants to clients (5m)',
              expr: `sum(rate(${sel('keycloak_user_events_total', { job, event: 'client_login', error: '' })}[5m]))`,
              suffix: ' /s',
            },
            {
              label: 'failed events (5m)',
              expr: `sum(rate(${sel('keycloak_user_events_total', { job, error: '!' })}[5m]))`,
              suffix: ' /s',
            },
            {
              label: 'HTTP requests (5m)',
              expr: `sum(rate(${sel('http_server_requests_seconds_count', { job })}[5m]))`,
              suffix: ' req/s',
            },
            heap,
          ],
          q,
        ),
        graphs(
          [
            {
              title: 'User events, by event and error',
              exprs: [
                `sum by (event, error) (rate(${sel('keycloak_user_events_total', { job })}[5m]))`,
              ],
              names: ['[[event]] [[error]]'],
              yUnits: '/s',
              min: 0,
            },
            heapGraph,
          ],
          'g_keycloak_',
          q,
        ),
      ].join('\n'),
  };
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
  const rules = compileSloRules(model, opts.slo);
  const measured = new Set(
    rules.groups.flatMap((g) =>
      g.rules.flatMap((r) => ('record' in r && r.labels?.route ? [r.labels.route] : [])),
    ),
  );
  const jobs = new Set(scrape.scrape_configs.map((j) => j.job_name));
  const m = opts.slo?.metrics ?? {};
  const source = { ...envoyRouteMetrics, ...m };
  const queries: string[] = [];
  const consoles: Record<string, string> = {};

  const routes = Object.entries(model.routes).filter(([name]) => measured.has(name));
  for (const [name, r] of routes) {
    const budget = r.budget;
    if (budget === undefined) continue;
    const on = { route: name };
    const latency = sel(source.latencyBucket, { ...source.matchers, [source.routeLabel]: name });
    const p99 = `histogram_quantile(0.99, sum by (le) (rate(${latency}[5m])))`;
    const errorBudget = budget.maxErrorRate;
    const burnRows: Row[] = burnWindows.flatMap((b) => [
      {
        label: `slow burn ${b.long} (${b.severity} above ${b.factor})`,
        expr: `${sel(sloSeries.slowRatio(b.long), on)} / ${latencyErrorBudget}`,
        suffix: '×',
        note: `pages/tickets when ${b.long} and ${b.short} both exceed ${b.factor}× the 1 % budget`,
      },
      ...(errorBudget > 0
        ? [
            {
              label: `error burn ${b.long} (${b.severity} above ${b.factor})`,
              expr: `${sel(sloSeries.errorRatio(b.long), on)} / ${errorBudget}`,
              suffix: '×',
              note: `budget: ${errorBudget} of requests may fail`,
            },
          ]
        : [
            {
              label: `5xx ratio ${b.long}`,
              expr: sel(sloSeries.errorRatio(b.long), on),
              format: 'humanizePercentage',
              note: 'maxErrorRate 0: any 5xx in both windows alerts',
            },
          ]),
    ]);
    const body = [
      `<p>${esc(routeLabel(r))}; budget ${budget.rps} rps, p99 ≤ ${budget.p99Ms} ms, errors ≤ ${errorBudget}. Measured at the edge sidecar (Envoy's per-route statistics).</p>`,
      table(
        [
          {
            label: 'request rate (5m)',
            expr: sel(sloSeries.requestRate, on),
            suffix: ' req/s',
            note: `budget: ${budget.rps} rps`,
          },
          {
            label: 'error ratio (5m)',
            expr: sel(sloSeries.errorRatio('5m'), on),
            format: 'humanizePercentage',
            note: `budget: ${errorBudget}`,
          },
          { label: 'p99 (5m)', expr: p99, suffix: ' ms', note: `budget: ${budget.p99Ms} ms` },
          {
            label: `slower than ${budget.p99Ms} ms (5m)`,
            expr: sel(sloSeries.slowRatio('5m'), on),
            format: 'humanizePercentage',
            note: 'budget: 1 %',
          },
          {
            label: 'alerts firing',
            expr: `count(${sel('ALERTS', { route: name, alertstate: 'firing' })}) or vector(0)`,
          },
          ...burnRows,
        ],
        queries,
      ),
      graphs(
        [
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
            exprs: burnWindows.map(
              (b) => `${sel(sloSeries.slowRatio(b.long), on)} / ${latencyErrorBudget}`,
            ),
            names: burnWindows.map((b) => b.long),
            min: 0,
          },
          {
            title: 'Error ratio',
            exprs: [sel(sloSeries.errorRatio('5m'), on), sel(sloSeries.errorRatio('1h'), on)],
            names: ['5m', '1h'],
            min: 0,
          },
        ],
        `g_route_`,
        queries,
      ),
    ].join('\n');
    consoles[consoleFiles.route(name)] = page(`Route: ${name}`, body);
  }

  const hops: Hop[] = [];
  for (const w of Object.keys(model.workloads).sort())
    if (jobs.has(scrapeJobs.envoy(w))) hops.push(sidecarHop(model, w));
  for (const s of ['cassandra', 'kafka', 'keycloak'] as const)
    if (jobs.has(scrapeJobs.server(s))) hops.push(serverHop(s));
  for (const h of hops) consoles[consoleFiles.hop(h.name)] = page(h.title, h.body(queries));

  const unmeasured = Object.keys(model.routes).filter((n) => !measured.has(n));
  const edge = edgeWorkloads(model)[0];
  const index = [
    `<p>Consoles compiled from the model (trust domain ${esc(model.trustDomain)}, ${esc(model.binding.environment)} environment). Values are evaluated when the page loads; graphs cover the time range below.</p>`,
    '<h2>Routes</h2>',
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th>route</th><th>request</th><th>req/s (5m)</th><th>p99 (5m)</th><th>budget</th></tr>',
    ...routes.map(([name, r]) => {
      const rate = sel(sloSeries.requestRate, { route: name });
      const p99 = `histogram_quantile(0.99, sum by (le) (rate(${sel(source.latencyBucket, { ...source.matchers, [source.routeLabel]: name })}[5m])))`;
      queries.push(rate, p99);
      return `<tr><td><a href="${consoleFiles.route(name)}">${esc(name)}</a></td><td>${esc(routeLabel(r))}</td><td>{{ template "prom_query_drilldown" (args ${goString(rate)} "" "printf.3g") }}</td><td>{{ template "prom_query_drilldown" (args ${goString(p99)} " ms" "printf.3g") }}</td><td>${r.budget?.rps ?? ''} rps, p99 ≤ ${r.budget?.p99Ms ?? ''} ms</td></tr>`;
    }),
    '</table>',
    ...(unmeasured.length > 0
      ? [`<p>Without a budget, so not measured per route: ${unmeasured.map(esc).join(', ')}.</p>`]
      : []),
    `<h2>Hops</h2>`,
    `<p>A request's path: nginx → ${esc(edge ?? 'the edge')}'s sidecar → the backend's sidecar → Cassandra and Kafka; tokens come from Keycloak.</p>`,
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th>hop</th><th>scrape up</th></tr>',
    ...hops.map((h) => {
      const up = sel('up', { job: h.job });
      queries.push(up);
      return `<tr><td><a href="${consoleFiles.hop(h.name)}">${esc(h.title.replace(/^Hop: /, ''))}</a></td><td>{{ template "prom_query_drilldown" (args ${goString(up)} "" "printf.3g") }}</td></tr>`;
    }),
    '</table>',
    `<p><a href="{{ pathPrefix }}/alerts">Alerts</a> · <a href="{{ pathPrefix }}/targets">Scrape targets</a> · <a href="{{ pathPrefix }}/rules">SLO rules</a></p>`,
  ].join('\n');
  consoles[consoleFiles.index] = page('Trellis', index);

  const menuItem = (file: string, label: string) =>
    `<li class="nav-item{{ if eq .Path "${file}" }} prom_lhs_menu_selected{{ end }}"><a class="nav-link" href="{{ pathPrefix }}/consoles/${file}">${esc(label)}</a></li>`;
  const lib = [
    '{{/* Written by Trellis (packages/policy/src/compile/consoles.ts): the navigation bar and menu of its consoles. */}}',
    '{{ define "navbar" }}',
    '<nav class="navbar fixed-top navbar-expand-sm navbar-dark bg-dark">',
    '<div class="container-fluid">',
    `<a class="navbar-brand" href="{{ pathPrefix }}/consoles/${consoleFiles.index}">Trellis</a>`,
    '<ul class="nav navbar-nav">',
    '<li class="nav-item"><a class="nav-link" href="{{ pathPrefix }}/alerts">Alerts</a></li>',
    '<li class="nav-item"><a class="nav-link" href="{{ pathPrefix }}/targets">Targets</a></li>',
    '<li class="nav-item"><a class="nav-link" href="{{ pathPrefix }}/graph">Graph</a></li>',
    '</ul>',
    '</div>',
    '</nav>',
    '{{ end }}',
    '{{ define "menu" }}',
    '<div class="prom_lhs_menu row">',
    '<nav class="col-md-2 md-block bg-dark sidebar prom_lhs_menu_nav">',
    '<div class="sidebar-sticky">',
    '<ul class="nav flex-column">',
    menuItem(consoleFiles.index, 'Overview'),
    ...routes.map(([name]) => menuItem(consoleFiles.route(name), `Route ${name}`)),
    ...hops.map((h) => menuItem(consoleFiles.hop(h.name), h.title.replace(/^Hop: /, ''))),
    '</ul>',
    '</div>',
    '</nav>',
    '</div>',
    '{{ end }}',
    '',
  ].join('\n');
  return { consoles, libraries: { 'trellis.lib': lib }, queries };
}
