/**
 * `./trellis load --environment NAME`: the plan's thresholds are the environment's budgets where it
 * names a route (or the mesh), production's elsewhere; the report shows both; an override that the
 * environment would hide is refused. The budgets here are test data, not measurements.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bindOrThrow,
  compileK6Thresholds,
  parseModel,
  validateModel,
  type BoundModel,
} from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import { parseLoadArgs } from '../../packages/cli/src/verbs/load.ts';
import { parseBudgetOverride } from '../src/overrides.ts';
import { buildPlan } from '../src/plan.ts';
import { collectReport, hopMetric, type K6Export } from '../src/report.ts';
import { checkEnvironment, refuseHiddenOverrides } from '../src/overrides.ts';
import { renderSummaryMd } from '../src/summary-md.ts';
import type { LoadTarget } from '../src/target.ts';
import { thresholdExpr, thresholdKey } from '../src/thresholds.ts';

const reference = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!reference.ok) throw new Error('trellis.yaml is invalid');

/** trellis.yaml with a `ci` environment that names create-order and the mesh (not get-order). */
function modelWithCi(): BoundModel {
  const d = structuredClone(reference.model) as unknown as { budgets: Record<string, unknown> };
  d.budgets['environments'] = {
    ci: {
      description: 'test runner',
      justification: 'test data for the load-tests unit tests; not a measurement',
      routes: { 'create-order': { rps: 10, p50Ms: 15, p99Ms: 45 } },
      mesh: { p50Ms: 1.5, p99Ms: 12 },
    },
  };
  const r = validateModel(d);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}
const model = modelWithCi();

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
const built = buildPlan({
  model,
  scenario: 'smoke',
  target,
  controlUrl: 'http://127.0.0.1:9',
  environment: 'ci',
});

const rendered = (k: string): string[] =>
  (built.plan.options.thresholds?.[k] ?? []).map((t) => (typeof t === 'string' ? t : t.threshold));

describe('buildPlan with an environment', () => {
  it("compiles the environment's budgets into k6's thresholds, production's elsewhere", () => {
    expect(rendered('http_req_duration{route:create-order,phase:measure}')).toEqual([
      'p(50)<=15',
      'p(99)<=45',
    ]);
    // get-order is not named by ci: production's 5 ms judges it.
    expect(rendered('http_req_duration{route:get-order,phase:measure}')).toEqual(['p(99)<=5']);
    expect(rendered('trellis_mesh_overhead{hop:get-order-sidecar,phase:measure}')).toEqual([
      'p(50)<=1.5',
      'p(99)<=12',
    ]);
  });

  it('without an environment, the same model is judged by production', () => {
    const prod = buildPlan({ model, scenario: 'smoke', target, controlUrl: 'http://127.0.0.1:9' });
    const keys = prod.layout.thresholds
      .filter((t) => t.tags.route === 'create-order' && t.metric === 'http_req_duration')
      .map((t) => `${thresholdKey(t)} ${thresholdExpr(t)}`);
    expect(keys).toEqual(['http_req_duration{route:create-order,phase:measure} p(99)<=10']);
  });

  it('steady splits its rate by the judged budgets (the environment’s rps where it names one)', () => {
    const steady = buildPlan({
      model,
      scenario: 'steady',
      target,
      controlUrl: 'http://127.0.0.1:9',
      rps: 101,
      environment: 'ci',
    });
    // Weights 10 (ci's create-order) : 1000 (production's get-order).
    expect(steady.layout.rates.map((r) => [r.route.name, r.rps])).toEqual([
      ['create-order', 1],
      ['get-order', 100],
    ]);
  });
});

describe('the report with an environment', () => {
  const compiled = compileK6Thresholds(model, { environment: 'ci' });
  const trend = (p50: number, p99: number, count: number, thresholds = {}) => ({
    'p(50)': p50,
    'p(95)': p99,
    'p(99)': p99,
    count,
    thresholds,
  });
  const exp: K6Export = {
    metrics: {
      'http_req_duration{route:create-order,phase:measure}': trend(12, 30, 70, {
        'p(50)<=15': false,
        'p(99)<=45': false,
      }),
      'http_req_duration{route:get-order,phase:measure}': trend(4, 9, 130, { 'p(99)<=5': true }),
      'http_reqs{phase:measure}': { count: 200, rate: 20 },
      [hopMetric('get-order-sidecar')]: trend(0.9, 6, 40),
      'trellis_mesh_overhead{hop:get-order-sidecar,phase:measure}': trend(0.9, 6, 40, {
        'p(50)<=1.5': false,
        'p(99)<=12': false,
      }),
    },
  };
  const r = collectReport({
    plan: built.plan,
    layout: built.layout,
    compiled,
    exp,
    measuredS: 10,
    base: {
      scenario: 'smoke',
      startedAt: '2026-12-06T00:00:00Z',
      finishedAt: '2026-12-06T00:01:00Z',
      command: './trellis load --scenario smoke --environment ci',
      target: target.ingressUrl,
      machine: { cpu: 'test', cores: 2, memGiB: 8, kernel: 'Linux' },
      loadAverage: { start: [1, 1, 1], end: [1, 1, 1] },
      k6: { version: 'k6', cpu: { average: 0.1, peak: 0.2, seconds: 10, samples: 10 } },
      exitCode: 99,
      overrides: [],
      envoy: [],
    },
  });

  it('carries the judged and the production budget of each route and hop', () => {
    expect(r.environment).toMatchObject({ name: 'ci', description: 'test runner' });
    expect(r.routes[0]).toMatchObject({
      route: 'create-order',
      budget: { p50Ms: 15, p99Ms: 45, maxErrorRate: 0 },
      environment: 'ci',
      production: { rps: 500, p99Ms: 10, maxErrorRate: 0 },
      breached: [],
    });
    expect(r.routes[1]).toMatchObject({
      route: 'get-order',
      budget: { p99Ms: 5 },
      production: { rps: 1000, p99Ms: 5 },
      breached: ['http_req_duration p(99)<=5'],
    });
    expect(r.routes[1]?.environment).toBeUndefined();
    expect(r.mesh?.hops.find((h) => h.name === 'get-order-sidecar')).toMatchObject({
      budget: { p50Ms: 1.5, p99Ms: 12 },
      production: { p50Ms: 0.3, p99Ms: 1 },
    });
    expect(r.mesh?.environment).toBe('ci');
  });

  it('summary.md shows both columns and why the environment differs', () => {
    const md = renderSummaryMd(r, {});
    expect(md).toContain(
      "| budgets | environment `ci` (test runner), where it names one; production's otherwise, and beside each. Why: test data for the load-tests unit tests; not a measurement |",
    );
    expect(md).toContain('| error rate | budget (ci) | production budget | result |');
    expect(md).toMatch(
      /\| create-order \| POST \/orders \| .* \| p50 ≤ 15 ms, p99 ≤ 45 ms, errors ≤ 0 % \| p99 ≤ 10 ms, errors ≤ 0 % at 500 rps \| ok \|/,
    );
    expect(md).toMatch(
      /\| get-order \| GET \/orders\/\{id\} \| .* \| as production \| p99 ≤ 5 ms, errors ≤ 0 % at 1000 rps \| \*\*BREACHED\*\*/,
    );
    expect(md).toMatch(
      /\| get-order-sidecar \(sidecar − direct\) \| Envoy traversal \| .* \| p50 ≤ 1\.5 ms, p99 ≤ 12 ms \| p50 ≤ 0\.3 ms, p99 ≤ 1 ms \| ok \|/,
    );
  });

  it('summary.md without an environment keeps one budget column', () => {
    const md = renderSummaryMd({ ...r, environment: undefined }, {});
    expect(md).toContain('| error rate | budget | result |');
    expect(md).toContain(
      "| budgets | production (the model's own; `--env NAME` judges by an environment's) |",
    );
    expect(md).not.toContain('production budget');
  });
});

describe('--env at the edges', () => {
  it('is parsed by ./trellis load, with --environment as its long spelling', () => {
    expect(parseLoadArgs(['--env', 'ci']).environment).toBe('ci');
    expect(parseLoadArgs(['--environment', 'ci']).environment).toBe('ci');
    expect(parseLoadArgs(['--env', 'ci', '--environment', 'ci']).environment).toBe('ci');
    expect(parseLoadArgs([]).environment).toBeUndefined();
    // production is the model's own budgets: the same run as without the option.
    expect(parseLoadArgs(['--env', 'production']).environment).toBeUndefined();
    expect(() => parseLoadArgs(['--env', 'ci', '--environment', 'staging'])).toThrow(
      '--env ci and --environment staging name different environments: give one',
    );
  });

  it('an environment the model does not declare is named before anything runs, with the known ones', () => {
    expect(() => checkEnvironment(model, 'staging')).toThrow(
      "--env staging: environment 'staging' is not declared in budgets.environments (known: production, ci; production is the model's own budgets)",
    );
    expect(() => checkEnvironment(model, 'ci')).not.toThrow();
    expect(() => checkEnvironment(model, 'production')).not.toThrow();
  });

  it('refuses an override the environment would hide, allows one it does not', () => {
    const compiled = compileK6Thresholds(model, { environment: 'ci' });
    expect(() =>
      refuseHiddenOverrides(compiled, [parseBudgetOverride('create-order:p99=0.01')]),
    ).toThrow(
      "--budget-override create-order: p99=0.01: environment 'ci' judges create-order by its own budget",
    );
    expect(() => refuseHiddenOverrides(compiled, [parseBudgetOverride('mesh:p50=0.1')])).toThrow(
      "environment 'ci' judges mesh by its own budget",
    );
    expect(() =>
      refuseHiddenOverrides(compiled, [parseBudgetOverride('get-order:p99=0.01')]),
    ).not.toThrow();
    // Without an environment every override counts.
    expect(() =>
      refuseHiddenOverrides(compileK6Thresholds(model), [
        parseBudgetOverride('create-order:p99=0.01'),
      ]),
    ).not.toThrow();
  });
});

describe("trellis.yaml's own ci environment (the measured one)", () => {
  const real = bindOrThrow(reference.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
  const plan = (environment?: string) =>
    buildPlan({
      model: real,
      scenario: 'smoke',
      target,
      controlUrl: 'http://127.0.0.1:9',
      ...(environment !== undefined ? { environment } : {}),
    });
  const judged = (p: ReturnType<typeof plan>) =>
    Object.fromEntries(
      p.layout.thresholds
        .filter((t) => t.metric === 'http_req_duration' || t.metric === 'trellis_mesh_overhead')
        .map((t) => [`${thresholdKey(t)} ${thresholdExpr(t).replace(/<=.*/, '')}`, t.value]),
    );

  it('--env ci judges every route and the mesh by other thresholds than production, which stay the same', () => {
    const prod = judged(plan());
    const ci = judged(plan('ci'));
    expect(Object.keys(ci).sort()).toEqual(Object.keys(prod).sort());
    for (const [k, v] of Object.entries(ci)) expect(v, k).not.toBe(prod[k]);
    // Production's own figures (ARCHITECTURE §7) are what a run without --env is judged by.
    expect(prod).toMatchObject({
      'http_req_duration{route:create-order,phase:measure} p(99)': 10,
      'http_req_duration{route:get-order,phase:measure} p(99)': 5,
    });
    expect(judged(plan('production'))).toEqual(prod);
  });

  it('the report of a --env ci run names both budgets of every route and hop', () => {
    const p = plan('ci');
    const rep = collectReport({
      plan: p.plan,
      layout: p.layout,
      compiled: compileK6Thresholds(real, { environment: 'ci' }),
      exp: null,
      base: {
        scenario: 'smoke',
        startedAt: 'a',
        finishedAt: 'b',
        command: './trellis load --env ci',
        target: 'test',
        machine: { cpu: 'x', cores: 2, memGiB: 1, kernel: 'k' },
        loadAverage: { start: [0, 0, 0], end: [0, 0, 0] },
        k6: { version: 'v', cpu: null },
        exitCode: 0,
        overrides: [],
        envoy: [],
      },
      measuredS: 30,
    });
    for (const r of rep.routes) {
      expect(r.environment, r.route).toBe('ci');
      expect(r.budget.p99Ms).toBeGreaterThan(r.production.p99Ms);
    }
    expect(rep.mesh?.environment).toBe('ci');
    const md = renderSummaryMd(rep, {});
    expect(md).toContain('| budget (ci) | production budget | result |');
    expect(md).toMatch(
      /\| create-order \| POST \/orders \| .* \| p99 ≤ 60 ms, errors ≤ 0 % \| p99 ≤ 10 ms, errors ≤ 0 % at 500 rps \|/,
    );
    expect(md).toMatch(
      /\| get-order-sidecar \(sidecar − direct\) \| Envoy traversal \| .* \| p50 ≤ 2\.5 ms, p99 ≤ 30 ms \| p50 ≤ 0\.3 ms, p99 ≤ 1 ms \|/,
    );
    expect(md).toContain('Why: The production budgets need real cores');
  });
});
