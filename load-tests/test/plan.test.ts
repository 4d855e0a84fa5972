import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindOrThrow, parseModel, type BoundModel } from '@trellis/policy';
import type { Scenario } from 'k6/options';
import { describe, expect, it } from 'vitest';
import { scenarioNames } from '../src/plan-types.ts';
import { buildPlan, meshProbe, recipeFor, splitRate, vusFor } from '../src/plan.ts';
import type { LoadTarget } from '../src/target.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model: BoundModel = bindOrThrow(
  parsed.model,
  { kind: 'example', baseDir: '/srv' },
  'example plan',
);

const SECRET = 'not-a-real-password-9f2c';
const bare: LoadTarget = {
  ingressUrl: 'https://localhost:8443',
  trustBundle: '/tmp/root.pem',
  tokenUrl: 'http://localhost:8180/realms/trellis/protocol/openid-connect/token',
  tokenForm: {
    grant_type: 'password',
    client_id: 'trellis-cli',
    username: 'alice',
    password: SECRET,
  },
};
const full: LoadTarget = {
  ...bare,
  mesh: {
    ingressUrl: 'http://127.0.0.1:8600',
    sidecarUrl: 'https://127.0.0.1:8620',
    appUrl: 'http://127.0.0.1:8820',
    clientCert: { certFile: '/pki/ingress/cert.pem', keyFile: '/pki/ingress/key.pem' },
    xfcc: 'URI=spiffe://trellis.local/ns/trellis/sa/ingress',
  },
  envoyAdmins: [{ name: 'ingress', url: 'http://127.0.0.1:8500' }],
};
const control = 'http://127.0.0.1:9999';

function scenario(s: Record<string, Scenario> | undefined, name: string): Record<string, unknown> {
  const x = s?.[name];
  if (!x) throw new Error(`no scenario ${name}`);
  return x as unknown as Record<string, unknown>;
}

describe('buildPlan', () => {
  it('steady: 500 rps split as the budgets (1:2), warm-up then measure, fixed VUs', () => {
    const { plan, layout } = buildPlan({
      model,
      scenario: 'steady',
      target: full,
      controlUrl: control,
    });
    expect(layout.rates.map((r) => [r.route.name, r.rps])).toEqual([
      ['create-order', 167],
      ['get-order', 333],
    ]);
    const sc = plan.options.scenarios;
    const m = scenario(sc, 'measure-get-order');
    expect(m).toMatchObject({
      executor: 'constant-arrival-rate',
      rate: 333 * 60,
      timeUnit: '1m',
      duration: '120s',
      startTime: '30s',
      gracefulStop: '0s',
      exec: 'route',
      tags: { phase: 'measure' },
      env: { TRELLIS_ROUTE: 'get-order' },
    });
    expect(m.preAllocatedVUs).toBe(m.maxVUs);
    expect(scenario(sc, 'warmup-get-order')).toMatchObject({
      startTime: '10s',
      duration: '20s',
      tags: { phase: 'warmup' },
    });
    // Every VU of the run goes through the connect phase first.
    expect(scenario(sc, 'connect')).toMatchObject({
      executor: 'per-vu-iterations',
      vus: layout.vus,
      iterations: 1,
      gracefulStop: '0s',
    });
    const sum = Object.entries(sc ?? {})
      .filter(([n]) => n.startsWith('measure-'))
      .reduce((s, [, x]) => s + Number((x as unknown as { maxVUs: number }).maxVUs), 0);
    expect(layout.vus).toBe(sum + 1);
    expect(scenario(sc, 'mark-start')).toMatchObject({ startTime: '30s', exec: 'markStart' });
    expect(scenario(sc, 'mark-end')).toMatchObject({ startTime: '150s', exec: 'markEnd' });
    expect(layout).toMatchObject({ measureStartS: 30, measureS: 120, totalS: 150 });
    // Dropped iterations carry the scenario name only: one report-only threshold per measured scenario.
    expect(plan.options.thresholds?.['dropped_iterations{scenario:measure-get-order}']).toEqual([
      'count>=0',
    ]);
  });

  it('read-heavy and write-heavy change the mix; --rps and --duration override', () => {
    const r = buildPlan({
      model,
      scenario: 'read-heavy',
      target: bare,
      controlUrl: control,
      rps: 1000,
    });
    expect(r.layout.rates.map((x) => x.rps)).toEqual([50, 950]);
    const w = buildPlan({
      model,
      scenario: 'write-heavy',
      target: bare,
      controlUrl: control,
      durationS: 45,
    });
    expect(w.layout.rates.map((x) => x.rps)).toEqual([450, 50]);
    expect(scenario(w.plan.options.scenarios, 'measure-create-order').duration).toBe('45s');
  });

  it('spike ramps to 3× the base and back, with VUs for the peak', () => {
    const { plan } = buildPlan({
      model,
      scenario: 'spike',
      target: bare,
      controlUrl: control,
      rps: 30,
    });
    const s = scenario(plan.options.scenarios, 'measure-get-order');
    expect(s.executor).toBe('ramping-arrival-rate');
    const stages = s.stages as { target: number; duration: string }[];
    expect(stages.map((x) => x.target)).toEqual([1200, 3600, 3600, 1200, 1200]);
    expect(s.maxVUs).toBe(vusFor(60));
  });

  it('smoke probes every mesh path and derives the hops between them', () => {
    const { plan, layout } = buildPlan({
      model,
      scenario: 'smoke',
      target: full,
      controlUrl: control,
    });
    expect(plan.mesh?.paths.map((p) => p.name)).toEqual(['edge', 'ingress', 'sidecar', 'direct']);
    expect(plan.mesh?.hops).toEqual([
      { name: 'get-order-sidecar', outer: 'sidecar', inner: 'direct', envoy: true },
      { name: 'ingress-envoy', outer: 'ingress', inner: 'sidecar', envoy: true },
      { name: 'nginx', outer: 'edge', inner: 'ingress', envoy: false },
    ]);
    expect(plan.mesh?.paths.find((p) => p.name === 'direct')).toMatchObject({
      auth: 'payload-header',
      headers: { 'x-forwarded-client-cert': 'URI=spiffe://trellis.local/ns/trellis/sa/ingress' },
    });
    expect(plan.clientCert).toEqual({
      domains: ['127.0.0.1'],
      certFile: '/pki/ingress/cert.pem',
      keyFile: '/pki/ingress/key.pem',
    });
    // The sidecar's SVID has no IP SAN: k6 cannot verify it (the runner verifies the ingress itself).
    expect(plan.options.insecureSkipTLSVerify).toBe(true);
    expect(plan.options.hosts).toEqual({ localhost: '127.0.0.1' });
    expect(layout.meshRate).toBe(4);
    expect(Object.keys(plan.options.thresholds ?? {})).toContain(
      'trellis_mesh_overhead{hop:ingress-envoy,phase:measure}',
    );
    expect(Object.keys(plan.options.thresholds ?? {})).not.toContain(
      'trellis_mesh_overhead{hop:nginx,phase:measure}',
    );
  });

  it('without fewer-hop endpoints: no probe, no mesh thresholds, TLS verified by k6', () => {
    const { plan, layout } = buildPlan({
      model,
      scenario: 'smoke',
      target: bare,
      controlUrl: control,
    });
    expect(plan.mesh).toBeUndefined();
    expect(layout.meshRate).toBe(0);
    expect(plan.options.insecureSkipTLSVerify).toBeUndefined();
    expect(
      Object.keys(plan.options.thresholds ?? {}).some((k) => k.startsWith('trellis_mesh')),
    ).toBe(false);
  });

  it('never carries the token form (the secret goes to k6 through its environment only)', () => {
    for (const s of scenarioNames) {
      const { plan } = buildPlan({ model, scenario: s, target: full, controlUrl: control });
      expect(JSON.stringify(plan)).not.toContain(SECRET);
      expect(plan.tokenUrl).toBe(bare.tokenUrl);
    }
  });

  it('refuses numbers that make no run', () => {
    expect(() =>
      buildPlan({ model, scenario: 'steady', target: bare, controlUrl: control, rps: 0 }),
    ).toThrow('--rps: 0 must be more than zero');
    expect(() =>
      buildPlan({ model, scenario: 'steady', target: bare, controlUrl: control, durationS: -1 }),
    ).toThrow('--duration: -1 s must be more than zero');
  });
});

describe('recipes, rates, probe', () => {
  it('maps the smoke service routes and names a route without a recipe', () => {
    expect(recipeFor({ route: 'a', method: 'POST', path: '/orders' })).toBe('create-order');
    expect(recipeFor({ route: 'b', method: 'GET', path: '/orders/{orderId}' })).toBe('get-order');
    expect(() => recipeFor({ route: 'refund', method: 'POST', path: '/refunds' })).toThrow(
      "route 'refund' (POST /refunds) has a budget but load-tests has no request recipe",
    );
  });

  it('gives every route in the mix at least 1 rps', () => {
    const routes = buildPlan({ model, scenario: 'steady', target: bare, controlUrl: control })
      .layout.rates;
    expect(splitRate(2, routes, { write: 0.01, read: 0.99 }).map((r) => r.rps)).toEqual([1, 2]);
    expect(() => splitRate(10, routes, { write: 0, read: 0 })).toThrow('weight of zero');
  });

  it('sizes VUs for 50 ms per request plus two', () => {
    expect(vusFor(500)).toBe(27);
    expect(vusFor(4, 4)).toBe(3);
  });

  it('needs at least two paths for a probe', () => {
    const read = {
      name: 'get-order',
      recipe: 'get-order' as const,
      method: 'GET',
      path: '/orders/{id}',
    };
    expect(meshProbe(bare, read)).toBeNull();
    expect(meshProbe({ ...bare, mesh: { appUrl: 'http://127.0.0.1:1' } }, read)?.hops).toEqual([]);
    // A sidecar URL without a client certificate cannot be probed (the sidecar requires mTLS).
    expect(meshProbe({ ...bare, mesh: { sidecarUrl: 'https://127.0.0.1:2' } }, read)).toBeNull();
  });
});
