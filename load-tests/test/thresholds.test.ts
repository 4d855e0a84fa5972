import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileK6Thresholds, parseModel, type ValidModel } from '@trellis/policy';
import type { ObjectThreshold } from 'k6/options';
import { describe, expect, it } from 'vitest';
import {
  formatThresholdKey,
  measured,
  parseThresholdKey,
  runThresholds,
} from '../src/thresholds.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model: ValidModel = parsed.model;
const compiled = compileK6Thresholds(model);

describe('threshold keys', () => {
  it('parse and format round-trip, tags in order', () => {
    const k = parseThresholdKey('http_req_duration{route:create-order,phase:measure}');
    expect(k).toEqual({
      metric: 'http_req_duration',
      tags: { route: 'create-order', phase: 'measure' },
    });
    expect(formatThresholdKey(k)).toBe('http_req_duration{route:create-order,phase:measure}');
    expect(parseThresholdKey('checks')).toEqual({ metric: 'checks', tags: {} });
  });

  it('reject keys that are not metric{tag:value}', () => {
    expect(() => parseThresholdKey('http_req_duration{route}')).toThrow(/'route' is not tag:value/);
    expect(() => parseThresholdKey('bad key')).toThrow(/is not metric or metric\{tag:value\}/);
  });

  it('measured() narrows a key to the measured phase, keeping its filter', () => {
    expect(measured('http_req_duration{route:get-order}')).toBe(
      'http_req_duration{route:get-order,phase:measure}',
    );
    expect(measured('trellis_mesh_overhead', { hop: 'h' })).toBe(
      'trellis_mesh_overhead{hop:h,phase:measure}',
    );
  });
});

describe('runThresholds (from trellis.yaml through compileK6Thresholds)', () => {
  const t = runThresholds(compiled, {
    envoyHops: ['get-order-sidecar', 'ingress-envoy'],
    abortDelayS: 42.2,
  });

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
    // No key without the phase filter: the warm-up never counts.
    for (const k of Object.keys(t)) expect(parseThresholdKey(k).tags.phase, k).toBe('measure');
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
    const x = runThresholds(compiled, { envoyHops: [], abortDelayS: 9, abortOnFail: false });
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
    const x = runThresholds(compileK6Thresholds(m as unknown as ValidModel), {
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
