/**
 * Test stacks only (ADR 0025): the SLO rules at a time scale, and the inert fault delay filter a test
 * stack's backend sidecars carry. The scaled rules' behaviour under series is tested with promtool
 * (packages/cli/test/slo-time-scale.component.test.ts); the whole path on the e2e stack by
 * infra/local/test/e2e/slo-alert.e2e.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  burnWindows,
  compileEnvoy,
  compilePrometheusRules,
  compileSloRules,
  durationSeconds,
  envoyDefaultBucketsMs,
  envoyOptions,
  faultDelayRuntime,
  formatDuration,
  httpFilterOrder,
  scaledBurnWindows,
  sloBucketsMs,
  sloTimeScaleProblem,
  sloWindows,
} from '../src/index.ts';
import type { AlertingRule, EnvoyBootstrap, HttpFilter, RecordingRule } from '../src/index.ts';
import { referenceBound } from './fixtures.ts';

const isAlert = (r: RecordingRule | AlertingRule): r is AlertingRule => 'alert' in r;
const divisorsOf300 = [...Array(300).keys()].map((i) => i + 1).filter((f) => 300 % f === 0);

describe('durations', () => {
  it('reads and writes Prometheus durations', () => {
    expect(['500ms', '2s', '5m', '1h', '3d'].map(durationSeconds)).toEqual([
      0.5, 2, 300, 3600, 259200,
    ]);
    expect(durationSeconds('2h24m')).toBe(8640);
    expect(durationSeconds('30m1h')).toBeNaN();
    expect(durationSeconds('2 s')).toBeNaN();
    expect([10, 60, 120, 8640, 86400, 259200].map(formatDuration)).toEqual([
      '10s',
      '1m',
      '2m',
      '2h24m',
      '1d',
      '3d',
    ]);
  });

  it('writes every unscaled window as the tiers do', () => {
    expect(sloWindows().map((w) => formatDuration(durationSeconds(w)))).toEqual(sloWindows());
  });
});

describe('SLO rules at a time scale', () => {
  const model = referenceBound();
  const at30 = { factor: 30, scrapeInterval: '2s' };

  it('divides every tier by the factor: the 1h/5m page reads 2m/10s at 30', () => {
    expect(
      scaledBurnWindows(30).map((w) => `${w.severity} ${w.long}/${w.short} ${w.factor}`),
    ).toEqual(['page 2m/10s 14.4', 'page 12m/1m 6', 'ticket 48m/4m 3', 'ticket 2h24m/12m 1']);
    expect(scaledBurnWindows(1)).toEqual(burnWindows);
  });

  it('factor 1 (or none) compiles the production rules unchanged', () => {
    expect(compileSloRules(model, { timeScale: { factor: 1, scrapeInterval: '15s' } })).toEqual(
      compileSloRules(model),
    );
  });

  it('scales every window and for, keeps every factor and threshold, and labels each alert', () => {
    const plain = compileSloRules(model).groups.flatMap((g) => g.rules);
    const scaled = compileSloRules(model, { timeScale: at30 }).groups.flatMap((g) => g.rules);
    expect(scaled).toHaveLength(plain.length);
    // Every duration in a rule (a range `[2m]`, a series name `…ratio_rate2m`, a label value, a
    // `for`) back at production's scale.
    const unscale = (s: string) =>
      s.replace(/(ratio_rate|\[|^)((?:\d+[smhd])+)(?=[\]{\s]|$)/g, (_, a: string, d: string) => {
        return `${a}${formatDuration(durationSeconds(d) * 30)}`;
      });
    scaled.forEach((r, i) => {
      const p = plain[i];
      if (isAlert(r) && p && isAlert(p)) {
        expect(unscale(r.expr)).toBe(p.expr);
        const { time_scale, long_window, short_window, ...labels } = r.labels;
        expect(time_scale).toBe('30');
        expect(labels).toEqual(
          Object.fromEntries(
            Object.entries(p.labels).filter(([k]) => k !== 'long_window' && k !== 'short_window'),
          ),
        );
        if (long_window !== undefined) expect(unscale(long_window)).toBe(p.labels.long_window);
        if (short_window !== undefined) expect(unscale(short_window)).toBe(p.labels.short_window);
        expect(r.for && unscale(r.for)).toBe(p.for);
      } else if (!isAlert(r) && p && !isAlert(p)) {
        // The request rate keeps its name; its window scales.
        expect(unscale(r.record)).toBe(p.record);
        expect(unscale(r.expr)).toBe(p.expr);
      } else throw new Error(`rule ${i} changed kind`);
    });
    const load = scaled.find((r) => isAlert(r) && r.labels.slo === 'load');
    expect(load && isAlert(load) ? load.for : undefined).toBe('30s');
    const description = scaled.find(isAlert)?.annotations.description ?? '';
    expect(description).toContain('of a 1d (30 days at time scale 1/30) budget');
  });

  it('reaches the PrometheusRule objects too', () => {
    const [rule] = compilePrometheusRules(model, { timeScale: at30 });
    expect(JSON.stringify(rule?.spec)).toContain('ratio_rate2m');
  });

  it('refuses a factor that is no whole number, does not divide the windows, or outruns the scrapes', () => {
    expect(sloTimeScaleProblem({ factor: 0.5, scrapeInterval: '2s' })).toBe(
      '0.5 must be a whole number, 1 or more (1: no scaling)',
    );
    expect(sloTimeScaleProblem({ factor: 7, scrapeInterval: '2s' })).toBe(
      '7 does not divide 5m, 30m, 1h, 2h, 6h, 1d, 3d, 15m into whole seconds: use a divisor of 300 (e.g. 10, 15, 20, 30, 60)',
    );
    expect(sloTimeScaleProblem({ factor: 60, scrapeInterval: '2s' })).toBe(
      '60 shrinks the 5m window to 5s, under 4 intervals of a 2s scrape (8s): use at most 30, or scrape more often',
    );
    expect(sloTimeScaleProblem({ factor: 6, scrapeInterval: '15s' })).toBe(
      '6 shrinks the 5m window to 50s, under 4 intervals of a 15s scrape (1m): use at most 5, or scrape more often',
    );
    // A source that refreshes its histograms on a timer (Envoy without stats_flush_on_admin: 5 s).
    expect(sloTimeScaleProblem({ factor: 30, scrapeInterval: '1s', flushInterval: '5s' })).toBe(
      "30 shrinks the 5m window to 10s, under 4 intervals of the source's 5s flush (20s): use at most 15, or flush the source more often",
    );
    expect(sloTimeScaleProblem({ factor: 30, scrapeInterval: 'fast' })).toBe(
      "scrape interval 'fast' is not a duration such as 2s",
    );
    expect(sloTimeScaleProblem({ factor: 30, scrapeInterval: '2s' })).toBeUndefined();
    expect(() =>
      compileSloRules(model, { timeScale: { factor: 60, scrapeInterval: '2s' } }),
    ).toThrow(/^compileSloRules: timeScale\.factor: 60 shrinks the 5m window to 5s/);
  });

  it('accepts exactly the divisors of 300 that leave the shortest window four scrapes long', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.constantFrom(1, 2, 5, 15), (f, s) => {
        const ok = sloTimeScaleProblem({ factor: f, scrapeInterval: `${s}s` }) === undefined;
        expect(ok).toBe(divisorsOf300.includes(f) && 300 / f >= 4 * s);
        if (ok)
          for (const w of scaledBurnWindows(f))
            expect(durationSeconds(w.short) * f).toBe(
              durationSeconds(burnWindows.find((b) => b.factor === w.factor)?.short ?? ''),
            );
      }),
    );
  });
});

describe("SLO rules judged by an environment's budgets", () => {
  const model = referenceBound();
  const ciBuckets = sloBucketsMs(model, 'ci');

  it("adds the environment's p99s to Envoy's buckets, and production needs none", () => {
    expect(sloBucketsMs(model)).toEqual(envoyDefaultBucketsMs);
    expect(sloBucketsMs(model, 'production')).toEqual(envoyDefaultBucketsMs);
    expect(ciBuckets.filter((b) => !envoyDefaultBucketsMs.includes(b))).toEqual([30, 60]);
    expect([...ciBuckets].sort((a, b) => a - b)).toEqual(ciBuckets);
  });

  it("counts requests over the environment's p99 (ci: get-order 30 ms, create-order 60 ms)", () => {
    const rules = compileSloRules(model, { environment: 'ci', metrics: { bucketsMs: ciBuckets } });
    const slow = (route: string) =>
      rules.groups
        .find((g) => g.name === `trellis-slo-${route}`)
        ?.rules.find((r) => !isAlert(r) && r.record.startsWith('route:trellis_slo_slow'));
    expect(slow('get-order')?.expr).toContain('le="30"');
    expect(slow('create-order')?.expr).toContain('le="60"');
    const load = rules.groups
      .flatMap((g) => g.rules)
      .find((r) => isAlert(r) && r.labels.slo === 'load');
    expect(load?.expr).toMatch(/> 7$/);
  });

  it("names the environment's field for a budget the buckets cannot count, and an unknown environment", () => {
    expect(() => compileSloRules(model, { environment: 'ci' })).toThrow(
      'budgets.environments.ci.routes.create-order.p99Ms: 60 ms is not a bucket boundary of envoy_vhost_route_upstream_rq_time_bucket, so the share of requests over it cannot be counted; use 50 or 100 ms, or add it to the histogram buckets',
    );
    expect(() => compileSloRules(model, { environment: 'staging' })).toThrow(
      "compileSloRules: environment 'staging' is not declared in budgets.environments (known: production, ci)",
    );
  });

  it("gives the edge's per-route histograms those buckets, and nothing else", () => {
    const { bootstrap } = compileEnvoy(model, {
      ...envoyOptions(model, 'ingress'),
      routeHistogramBucketsMs: ciBuckets,
    });
    expect(bootstrap.stats_config).toEqual({
      histogram_bucket_settings: [
        {
          match: {
            safe_regex: { regex: String.raw`^vhost\.(.+\.)?route\.(.+\.)?upstream_rq_time$` },
          },
          buckets: ciBuckets,
        },
      ],
    });
    const regex = new RegExp(
      bootstrap.stats_config?.histogram_bucket_settings[0]?.match.safe_regex.regex ?? '$^',
    );
    expect(regex.test('vhost.inbound_http.route.get-order.upstream_rq_time')).toBe(true);
    expect(regex.test('cluster.orders-api.upstream_rq_time')).toBe(false);
    expect(regex.test('http.inbound_http.downstream_rq_time')).toBe(false);
    expect(
      compileEnvoy(model, envoyOptions(model, 'ingress')).bootstrap.stats_config,
    ).toBeUndefined();
  });
});

describe('the fault delay filter of a test stack', () => {
  const model = referenceBound();
  const httpFilters = (b: EnvoyBootstrap, listener: string): HttpFilter['name'][] =>
    (
      b.static_resources.listeners
        .find((l) => l.name === listener)
        ?.filter_chains[0]?.filters.find(
          (f) => f.name === 'envoy.filters.network.http_connection_manager',
        )?.typed_config.http_filters ?? []
    ).map((f: HttpFilter) => f.name);

  it('with faultInjection: a backend sidecar delays 0 % until the admin runtime says otherwise', () => {
    const { bootstrap } = compileEnvoy(model, {
      ...envoyOptions(model, 'orders-api'),
      faultInjection: true,
    });
    const names = httpFilters(bootstrap, 'inbound_http');
    expect(names.slice(-2)).toEqual(['envoy.filters.http.fault', 'envoy.filters.http.router']);
    expect(httpFilterOrder.indexOf('envoy.filters.http.fault')).toBeGreaterThan(
      httpFilterOrder.indexOf('envoy.filters.http.rbac'),
    );
    const hcm = bootstrap.static_resources.listeners
      .find((l) => l.name === 'inbound_http')
      ?.filter_chains[0]?.filters.find(
        (f) => f.name === 'envoy.filters.network.http_connection_manager',
      );
    const fault = hcm?.typed_config.http_filters.find((f) => f.name === 'envoy.filters.http.fault');
    expect(fault?.typed_config).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: { fixed_delay: '0.1s', percentage: { numerator: 0, denominator: 'HUNDRED' } },
    });
    expect(bootstrap.layered_runtime).toEqual({ layers: [{ name: 'admin', admin_layer: {} }] });
    expect(faultDelayRuntime).toEqual({
      percent: 'fault.http.delay.fixed_delay_percent',
      durationMs: 'fault.http.delay.fixed_duration_ms',
    });
  });

  it('without it (production, local), and at the edge always: no fault filter and no runtime layer', () => {
    const plain = compileEnvoy(model, envoyOptions(model, 'orders-api')).bootstrap;
    expect(httpFilters(plain, 'inbound_http')).not.toContain('envoy.filters.http.fault');
    expect(plain.layered_runtime).toBeUndefined();
    const edge = compileEnvoy(model, {
      ...envoyOptions(model, 'ingress'),
      faultInjection: true,
    }).bootstrap;
    const edgeListeners = edge.static_resources.listeners.map((l) => l.name);
    for (const l of edgeListeners)
      expect(httpFilters(edge, l)).not.toContain('envoy.filters.http.fault');
    expect(httpFilters(edge, edgeListeners.find((l) => l.startsWith('inbound_')) ?? '')).toContain(
      'envoy.filters.http.router',
    );
  });
});
