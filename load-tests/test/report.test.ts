import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileK6Thresholds, parseModel } from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import { niceStep, renderOverheadSvg } from '../src/chart.ts';
import { applyBudgetOverrides, parseBudgetOverride } from '../src/overrides.ts';
import { buildPlan } from '../src/plan.ts';
import { ms } from '../src/format.ts';
import { collectReport, hopMetric, type K6Export } from '../src/report.ts';
import { renderSummaryMd } from '../src/summary-md.ts';
import type { LoadTarget } from '../src/target.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model = applyBudgetOverrides(parsed.model, [parseBudgetOverride('create-order:p99=0.01')]);
const compiled = compileK6Thresholds(model);
const target: LoadTarget = {
  ingressUrl: 'https://localhost:8443',
  tokenUrl: 'http://localhost:8180/token',
  tokenForm: { grant_type: 'password' },
  mesh: {
    ingressUrl: 'http://127.0.0.1:1',
    sidecarUrl: 'https://127.0.0.1:2',
    appUrl: 'http://127.0.0.1:3',
    clientCert: { certFile: 'c', keyFile: 'k' },
  },
};
const { plan, layout } = buildPlan({
  model,
  scenario: 'smoke',
  target,
  controlUrl: 'http://127.0.0.1:9',
});

const trend = (p50: number, p95: number, p99: number, count: number, thresholds = {}) => ({
  'p(50)': p50,
  'p(95)': p95,
  'p(99)': p99,
  count,
  thresholds,
});
/** A `--summary-export` as k6 writes it: thresholds map to true when crossed. */
const exp: K6Export = {
  metrics: {
    'http_req_duration{route:create-order,phase:measure}': trend(2.1, 3.5, 4.8, 210, {
      'p(99)<=0.01': true,
    }),
    'http_req_duration{route:get-order,phase:measure}': trend(1.2, 2.2, 3.1, 390, {
      'p(99)<=5': false,
    }),
    'http_req_failed{route:create-order,phase:measure}': { value: 0, passes: 0, fails: 210 },
    'http_req_failed{route:get-order,phase:measure}': { value: 0, passes: 0, fails: 390 },
    'http_req_failed{phase:measure}': { value: 0, passes: 0, fails: 1080 },
    'checks{phase:measure}': { value: 1, passes: 2160, fails: 0 },
    'http_req_connecting{phase:measure}': trend(0, 0, 0, 1080),
    'http_req_tls_handshaking{phase:measure}': trend(0, 0, 0, 1080),
    'http_reqs{phase:measure}': { count: 1080, rate: 36 },
    'dropped_iterations{scenario:measure-create-order}': { count: 3, rate: 0.1 },
    'dropped_iterations{scenario:measure-get-order}': { count: 4, rate: 0.1 },
    'dropped_iterations{scenario:warmup-get-order}': { count: 100, rate: 3 },
    trellis_path_edge: trend(2.4, 4, 6, 120),
    trellis_path_ingress: trend(1.6, 2.5, 3.2, 120),
    trellis_path_sidecar: trend(1.1, 1.9, 2.6, 120),
    trellis_path_direct: trend(0.5, 0.9, 1.4, 120),
    [hopMetric('get-order-sidecar')]: trend(0.41, 0.8, 1.3, 120),
    [hopMetric('ingress-envoy')]: trend(0.22, 0.5, 0.7, 120),
    [hopMetric('nginx')]: trend(0.8, 1.5, 2.9, 120),
    'trellis_mesh_overhead{hop:get-order-sidecar,phase:measure}': trend(0.41, 0.8, 1.3, 120, {
      'p(50)<=0.3': true,
      'p(99)<=1': true,
    }),
  },
};
const base = {
  scenario: 'smoke' as const,
  startedAt: '2026-11-22T08:00:00Z',
  finishedAt: '2026-11-22T08:01:00Z',
  command: './trellis load --scenario smoke',
  target: 'https://localhost:8443',
  machine: { cpu: 'AMD EPYC', cores: 2, memGiB: 24, kernel: 'Linux 6' },
  loadAverage: { start: [3.1, 2, 1], end: [3.5, 2.2, 1.1] },
  k6: { version: 'k6 v1.8.1', cpu: { average: 0.91, peak: 1.2, seconds: 30, samples: 30 } },
  exitCode: 99,
  overrides: ['create-order: p99=0.01'],
  envoy: [
    {
      name: 'orders-api',
      stats: [{ stat: 'http.inbound_http.downstream_rq_time', count: 500, p50: 1, p99: 3 }],
    },
  ],
};

describe('report', () => {
  const r = collectReport({ plan, layout, compiled, exp, base, measuredS: 30 });

  it('reads each route against its budget and names the breached one', () => {
    const [create, get] = r.routes;
    expect(create).toMatchObject({
      route: 'create-order',
      count: 210,
      p50: 2.1,
      p95: 3.5,
      p99: 4.8,
      errorRate: 0,
      achievedRps: 7,
      breached: ['http_req_duration p(99)<=0.01'],
    });
    expect(get?.breached).toEqual([]);
    expect(r.thresholds.find((t) => !t.ok)).toMatchObject({
      key: 'http_req_duration{route:create-order,phase:measure}',
      expr: 'p(99)<=0.01',
      value: 4.8,
    });
  });

  it('computes hop overhead both ways, and the budget applies to Envoy hops only', () => {
    const hop = r.mesh?.hops.find((h) => h.name === 'get-order-sidecar');
    expect(hop).toMatchObject({
      count: 120,
      p50: 0.41,
      p99: 1.3,
      budget: { p50Ms: 0.3, p99Ms: 1 },
    });
    expect(hop?.deltaP50).toBeCloseTo(0.6, 10);
    expect(hop?.breached).toEqual([
      'trellis_mesh_overhead p(50)<=0.3',
      'trellis_mesh_overhead p(99)<=1',
    ]);
    expect(r.mesh?.hops.find((h) => h.name === 'nginx')?.budget).toBeUndefined();
  });

  it('counts iterations k6 dropped while measuring (not in the warm-up)', () => {
    expect(r.droppedIterations).toBe(7);
    expect(r.notes.join('\n')).toMatch(/k6 dropped 7 iterations while measuring/);
  });

  it('warns when k6 used more than 80 % of a core', () => {
    expect(r.notes.join('\n')).toMatch(/WARNING: k6 used 91 % of one core/);
    const calm = collectReport({
      plan,
      layout,
      compiled,
      exp,
      measuredS: 30,
      base: { ...base, k6: { ...base.k6, cpu: { ...base.k6.cpu, average: 0.3 } } },
    });
    expect(calm.notes.join('\n')).not.toMatch(/WARNING/);
  });

  it('shows n/a, not 0 ms, for what was not measured', () => {
    const empty = collectReport({ plan, layout, compiled, exp: null, base, measuredS: 0 });
    expect(empty.routes[0]).toMatchObject({ count: 0, p99: null, errorRate: null });
    expect(empty.notes).toContain('k6 wrote no JSON summary: see k6.log.');
    const md = renderSummaryMd(empty, {});
    expect(md).toContain(
      '| create-order | POST /orders | 7 / n/a / 500 rps | 0 | n/a | n/a | n/a | n/a |',
    );
    expect(md).toContain('not measured');
  });

  it('renders summary.md: verdict, breached route, tables, machine load and k6 CPU', () => {
    const md = renderSummaryMd(r, {
      'k6 JSON summary': 'summary.json',
      chart: 'mesh-overhead.svg',
    });
    expect(md).toContain('**FAIL: a budget was broken (k6 exit 99, thresholds crossed)**');
    expect(md).toContain(
      '- route `create-order`: `http_req_duration{route:create-order,phase:measure}` `p(99)<=0.01` (measured 4.80)',
    );
    expect(md).toMatch(
      /\| create-order \| POST \/orders \| 7 \/ 7\.0 \/ 500 rps \| 210 \| 2\.10 ms \| 3\.50 ms \| 4\.80 ms \| 0 % \| p99 ≤ 0\.01 ms, errors ≤ 0 % \| \*\*BREACHED\*\*/,
    );
    expect(md).toMatch(/\| get-order \| GET \/orders\/\{id\} \| .* \| ok \|/);
    expect(md).toContain(
      'load average (1/5/15 min) | start 3.10 / 2.00 / 1.00, end 3.50 / 2.20 / 1.10',
    );
    expect(md).toContain('91 % of one core on average, peak 120 %');
    expect(md).toContain('| budget overrides | create-order: p99=0.01 |');
    expect(md).toContain(
      '| orders-api | http.inbound_http.downstream_rq_time | 500 | 1.00 ms | 3.00 ms |',
    );
    expect(md).toContain('![per-hop overhead](mesh-overhead.svg)');
  });

  it('draws the chart: one row per hop and per path, budget marks on Envoy hops', () => {
    const svg = renderOverheadSvg(r) ?? '';
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    for (const label of ['get-order-sidecar', 'ingress-envoy', 'nginx (not Envoy)', 'direct'])
      expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('p99 1.3 ms');
    // Two budget marks (p50, p99) for each of the two Envoy hops.
    expect(svg.match(/stroke-dasharray="5 2"/g)).toHaveLength(4);
    expect(svg).toContain('(FAIL: budget breached)');
    // Text is escaped.
    expect(svg).not.toMatch(/<text[^>]*>[^<]*&(?!amp;|lt;|gt;|quot;)/);
    expect(renderOverheadSvg({ ...r, mesh: null })).toBeNull();
  });

  it('formats numbers for people', () => {
    expect(ms(0.1234)).toBe('0.123 ms');
    expect(ms(4.8)).toBe('4.80 ms');
    expect(ms(27.03)).toBe('27.0 ms');
    expect(ms(null)).toBe('n/a');
    expect(niceStep(9)).toBe(2);
    expect(niceStep(0.9)).toBe(0.2);
  });
});
