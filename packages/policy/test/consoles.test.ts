/**
 * The dashboards (ADR 0024): Prometheus console templates compiled from the model. Each console
 * reads only what the stack collects — the SLO rules' recordings and the compiled scrape jobs'
 * series — and uses only templates that prom.lib or the compiled trellis.lib define. That they
 * render on a real Prometheus is packages/cli/test/consoles.component.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  compileConsoles,
  compilePrometheusScrape,
  compileSloRules,
  consoleSourceMetrics,
  sloBucketsMs,
  envoyRouteMetrics,
  validateModel,
} from '../src/index.ts';
import { example, referenceBound, referenceData } from './fixtures.ts';

const dataTargets = {
  cassandra: { address: '198.18.8.22', port: 8560 },
  kafka: { address: '198.18.8.23', port: 8561 },
  keycloak: { address: '198.18.8.24', port: 8562 },
};

/** The templates Debian's prometheus 2.42 `prom.lib` defines (console_libraries/prom.lib). */
const promLib = [
  'prom_console_head',
  'head',
  'tail',
  'humanize',
  'humanizeNoSmallPrefix',
  'humanize1024',
  'humanizeDuration',
  'humanizePercentage',
  'humanizeTimestamp',
  'printf.1f',
  'printf.3g',
  'prom_query_drilldown',
  'prom_path',
  'prom_right_table_head',
  'prom_right_table_tail',
  'prom_right_table_job_head',
  'prom_content_head',
  'prom_content_tail',
  'prom_graph_timecontrol',
];

function compiled() {
  const model = referenceBound();
  const scrape = compilePrometheusScrape(model, { dataTargets });
  return { model, scrape, out: compileConsoles(model, scrape) };
}

describe('compileConsoles', () => {
  it('writes an index, one console per budgeted route and one per scraped hop', () => {
    const { out } = compiled();
    expect(Object.keys(out.consoles).sort()).toEqual([
      'hop-cassandra.html',
      'hop-ingress.html',
      'hop-kafka.html',
      'hop-keycloak.html',
      'hop-ledger.html',
      'hop-orders-api.html',
      'hop-orders-writer.html',
      'index.html',
      'route-create-order.html',
      'route-get-order.html',
    ]);
    expect(Object.keys(out.libraries)).toEqual(['trellis.lib']);
    const index = out.consoles['index.html'] ?? '';
    for (const f of Object.keys(out.consoles).filter((f) => f !== 'index.html'))
      expect(index, f).toContain(`href="${f}"`);
  });

  it('shows each route against its budget, with the burn rates of the recording rules', () => {
    const { out } = compiled();
    const c = out.consoles['route-create-order.html'] ?? '';
    expect(c).toContain('<h1>Route: create-order</h1>');
    expect(c).toContain('POST /orders → orders-api:http');
    expect(c).toContain('budget: 10 ms');
    expect(c).toContain('budget: 500 rps');
    expect(c).toContain(
      `{{ template "prom_query_drilldown" (args "route:trellis_slo_requests:rate5m{route='create-order'}" " req/s" "printf.3g") }}`,
    );
    // The p99 budget is graphed beside the measured p99, and every burn window has a row.
    expect(c).toContain(
      `expr: ["histogram_quantile(0.99, sum by (le) (rate(envoy_vhost_route_upstream_rq_time_bucket{envoy_route='create-order'}[5m])))","vector(10)"]`,
    );
    for (const w of ['1h', '6h', '1d', '3d'])
      expect(c).toContain(`route:trellis_slo_slow:ratio_rate${w}{route='create-order'} / 0.01`);
    expect(out.consoles['route-get-order.html']).toContain('budget: 5 ms');
  });

  it('reads only recordings of the compiled rules and series of the compiled jobs', () => {
    const { model, scrape, out } = compiled();
    const records = new Set(
      compileSloRules(model).groups.flatMap((g) =>
        g.rules.flatMap((r) => ('record' in r ? [r.record] : [])),
      ),
    );
    const jobs = new Set(scrape.scrape_configs.map((j) => j.job_name));
    const known = new Set<string>([
      'up',
      'ALERTS',
      envoyRouteMetrics.latencyBucket,
      ...Object.values(consoleSourceMetrics).flat(),
    ]);
    expect(out.queries.length).toBeGreaterThan(50);
    let recorded = 0;
    for (const q of out.queries) {
      for (const [, name] of q.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{/g)) {
        if (name === undefined) continue;
        if (name.includes(':')) {
          expect(records.has(name), `${name} in ${q}`).toBe(true);
          recorded++;
        } else expect(known.has(name), `${name} in ${q}`).toBe(true);
      }
      for (const [, job] of q.matchAll(/\bjob='([^']*)'/g))
        expect(jobs.has(job ?? ''), `job ${job} in ${q}`).toBe(true);
    }
    expect(recorded).toBeGreaterThan(10);
    // And each hop's series carry its job: nothing is read across jobs.
    expect(out.consoles['hop-keycloak.html']).toContain(
      "keycloak_user_events_total{job='keycloak',event='login',error=''}",
    );
    expect(out.consoles['hop-orders-api.html']).toContain(
      "envoy_http_downstream_rq_total{job='envoy-orders-api',envoy_http_conn_manager_prefix!='metrics'}",
    );
  });

  it('uses only templates that prom.lib or trellis.lib define, with balanced actions', () => {
    const { out } = compiled();
    const lib = out.libraries['trellis.lib'] ?? '';
    const defined = new Set([
      ...promLib,
      ...[...lib.matchAll(/\{\{ define "([^"]+)" \}\}/g)].map((m) => m[1]),
    ]);
    expect(defined.has('navbar') && defined.has('menu')).toBe(true);
    for (const [file, text] of Object.entries({ ...out.consoles, ...out.libraries })) {
      expect(text.split('{{').length, file).toBe(text.split('}}').length);
      for (const [, t] of text.matchAll(/\{\{ template "([^"]+)"/g))
        expect(defined.has(t ?? ''), `${file}: template ${t}`).toBe(true);
    }
    // The navigation bar leads back to the index, which links every console (first test).
    expect(lib).toContain('href="{{ pathPrefix }}/consoles/index.html">Trellis</a>');
  });

  it('leaves out the hops that are not scraped and the routes without a budget', () => {
    const d = referenceData();
    const routes = d.routes as Record<string, { budget?: unknown }>;
    delete routes['get-order']?.budget;
    const envs = (
      d.budgets as { environments: Record<string, { routes: Record<string, unknown> }> }
    ).environments;
    for (const e of Object.values(envs)) delete e.routes['get-order'];
    const r = validateModel(d);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const model = example(r.model);
    const out = compileConsoles(model, compilePrometheusScrape(model));
    expect(
      Object.keys(out.consoles).filter((f) => /cassandra|kafka|keycloak|get-order/.test(f)),
    ).toEqual([]);
    expect(out.consoles['index.html']).toContain(
      'Without a budget, so not measured per route: get-order.',
    );
  });

  it('reads the rules as they were compiled: an environment’s budgets, a test stack’s time scale', () => {
    const model = referenceBound();
    const scrape = compilePrometheusScrape(model, { dataTargets });
    const slo = {
      environment: 'ci',
      timeScale: { factor: 30, scrapeInterval: '2s' },
      metrics: { bucketsMs: sloBucketsMs(model, 'ci') },
    };
    const out = compileConsoles(model, scrape, { slo });
    const records = new Set(
      compileSloRules(model, slo).groups.flatMap((g) =>
        g.rules.flatMap((r) => ('record' in r ? [r.record] : [])),
      ),
    );
    const read = out.queries.flatMap((q) =>
      [...q.matchAll(/([a-z_]+:[a-z_:0-9]+)\{/g)].map((m) => m[1]),
    );
    expect(read.length).toBeGreaterThan(10);
    for (const name of read) expect(records.has(name ?? ''), name).toBe(true);
    const c = out.consoles['route-create-order.html'] ?? '';
    // ci's budget (60 ms at 7 rps), and the windows divided by 30 (5m → 10s, 1h → 2m).
    expect(c).toContain('budget: 60 ms');
    expect(c).toContain('budget: 7 rps');
    expect(c).toContain("route:trellis_slo_errors:ratio_rate10s{route='create-order'}");
    expect(c).toContain("route:trellis_slo_slow:ratio_rate2m{route='create-order'} / 0.01");
    expect(c).not.toContain('ratio_rate1h');
  });
});
