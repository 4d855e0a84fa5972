import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindOrThrow, compileK6Thresholds, parseModel, type BoundModel } from '@trellis/policy';
import type { ObjectThreshold } from 'k6/options';
import { describe, expect, it } from 'vitest';
import {
  renderThresholds,
  runThresholds,
  thresholdExpr,
  thresholdKey,
  type ThresholdOptions,
} from '../src/thresholds.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model: BoundModel = bindOrThrow(
  parsed.model,
  { kind: 'example', baseDir: '/srv' },
  'example plan',
);
const compiled = compileK6Thresholds(model);

describe('rendering in k6 syntax', () => {
  it('keys are metric{tag:value,...}, tags in order, or the bare metric', () => {
    expect(
      thresholdKey({
        metric: 'http_req_duration',
        tags: { route: 'create-order', phase: 'measure' },
      }),
    ).toBe('http_req_duration{route:create-order,phase:measure}');
    expect(thresholdKey({ metric: 'checks', tags: {} })).toBe('checks');
  });

  it('expressions are statistic, comparison and value', () => {
    const t = { metric: 'm', tags: {} };
    expect(
      thresholdExpr({ ...t, statistic: { percentile: 99 }, comparison: '<=', value: 10 }),
    ).toBe('p(99)<=10');
    expect(thresholdExpr({ ...t, statistic: 'rate', comparison: '<', value: 0.001 })).toBe(
      'rate<0.001',
    );
    expect(thresholdExpr({ ...t, statistic: 'count', comparison: '>=', value: 0 })).toBe(
      'count>=0',
    );
  });

  it('groups thresholds by key; abortOnFail makes an object, its absence a plain string', () => {
    const base = { metric: 'http_req_duration', tags: { route: 'r' }, comparison: '<=' } as const;
    expect(
      renderThresholds([
        { ...base, statistic: { percentile: 50 }, value: 2 },
        { ...base, statistic: { percentile: 99 }, value: 7, abortOnFail: false },
        { ...base, statistic: 'max', value: 9, abortOnFail: true, delayAbortEval: '5s' },
        { metric: 'checks', tags: {}, statistic: 'rate', comparison: '>', value: 0.9 },
      ]),
    ).toEqual({
      'http_req_duration{route:r}': [
        'p(50)<=2',
        { threshold: 'p(99)<=7', abortOnFail: false },
        { threshold: 'max<=9', abortOnFail: true, delayAbortEval: '5s' },
      ],
      checks: ['rate>0.9'],
    });
  });
});

describe('runThresholds (from trellis.yaml through compileK6Thresholds)', () => {
  const k6 = (c: typeof compiled, o: ThresholdOptions) => renderThresholds(runThresholds(c, o));
  const o = { envoyHops: ['get-order-sidecar', 'ingress-envoy'], abortDelayS: 42.2 };
  const t = k6(compiled, o);

  it('holds each route to its budget, measured phase only, aborting after the delay', () => {
    expect(t['http_req_duration{route:create-order,phase:measure}']).toEqual([
      { threshold: 'p(99)<=10', abortOnFail: true, delayAbortEval: '43s' },
    ]);
    expect(t['http_req_duration{route:get-order,phase:measure}']).toEqual([
      { threshold: 'p(99)<=5', abortOnFail: true, delayAbortEval: '43s' },
    ]);
    expect(t['http_req_failed{route:create-order,phase:measure}']?.[0]).toMatchObject({
      threshold: 'rate<=0',
    });
    // No threshold without the phase filter: the warm-up never counts.
    for (const x of runThresholds(compiled, o))
      expect(x.tags.phase, thresholdKey(x)).toBe('measure');
  });

  it('applies the mesh budget to each Envoy hop separately', () => {
    for (const hop of ['get-order-sidecar', 'ingress-envoy'])
      expect(
        (t[`trellis_mesh_overhead{hop:${hop},phase:measure}`] as ObjectThreshold[]).map(
          (x) => x.threshold,
        ),
      ).toEqual(['p(50)<=0.3', 'p(99)<=1']);
    expect(t['trellis_mesh_overhead{phase:measure}']).toBeUndefined();
  });

  it('keeps errors under 0.1 % and requires reused connections (judged at the end only)', () => {
    expect(t['http_req_failed{phase:measure}']).toEqual([
      { threshold: 'rate<0.001', abortOnFail: true, delayAbortEval: '43s' },
    ]);
    expect(t['checks{phase:measure}']?.[0]).toMatchObject({ threshold: 'rate>0.999' });
    expect(t['http_req_connecting{phase:measure}']).toEqual(['p(99)<=0']);
    expect(t['http_req_tls_handshaking{phase:measure}']).toEqual(['p(99)<=0']);
  });

  it('--no-abort: the same thresholds, judged at the end only', () => {
    const x = k6(compiled, { envoyHops: [], abortDelayS: 9, abortOnFail: false });
    expect(x['http_req_duration{route:create-order,phase:measure}']).toEqual([
      { threshold: 'p(99)<=10', abortOnFail: false },
    ]);
  });

  it('passes through a p(50) budget and a non-zero error budget', () => {
    const m = structuredClone(model) as unknown as {
      routes: Record<string, { budget: Record<string, number> }>;
    };
    const r = m.routes['get-order'];
    if (!r) throw new Error('get-order');
    r.budget = { rps: 100, p50Ms: 2, p99Ms: 7, maxErrorRate: 0.01 };
    const x = k6(compileK6Thresholds(m as unknown as BoundModel), {
      envoyHops: [],
      abortDelayS: 1,
    });
    expect(
      (x['http_req_duration{route:get-order,phase:measure}'] as ObjectThreshold[]).map(
        (y) => y.threshold,
      ),
    ).toEqual(['p(50)<=2', 'p(99)<=7']);
    expect(x['http_req_failed{route:get-order,phase:measure}']?.[0]).toMatchObject({
      threshold: 'rate<=0.01',
    });
    expect(Object.keys(x).some((k) => k.startsWith('trellis_mesh_overhead'))).toBe(false);
  });
});
