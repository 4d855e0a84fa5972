import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindOrThrow, compileK6Thresholds, parseModel } from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import { applyBudgetOverrides, describeOverride, parseBudgetOverride } from '../src/overrides.ts';
import { parseDuration, parseScenario, k6Duration } from '../src/scenarios.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model = bindOrThrow(parsed.model, { kind: 'example', baseDir: '/srv' }, 'example plan');

describe('--budget-override', () => {
  it('parses route and mesh overrides', () => {
    expect(parseBudgetOverride('create-order:p99=0.01')).toEqual({
      target: 'create-order',
      p99Ms: 0.01,
    });
    expect(parseBudgetOverride('mesh:p50=0.5,p99=2,rps=100')).toEqual({
      target: 'mesh',
      p50Ms: 0.5,
      p99Ms: 2,
      rps: 100,
    });
    expect(parseBudgetOverride('get-order:errors=0.01')).toEqual({
      target: 'get-order',
      maxErrorRate: 0.01,
    });
    expect(describeOverride(parseBudgetOverride('mesh:p99=2,p50=1'))).toBe('mesh: p50=1, p99=2');
  });

  it('names what is wrong', () => {
    expect(() => parseBudgetOverride('create-order')).toThrow(
      /is not <route\|mesh>:<field>=<value>/,
    );
    expect(() => parseBudgetOverride('create-order:p95=3')).toThrow(
      "'p95=3' must be one of p50, p99, rps, errors",
    );
    expect(() => parseBudgetOverride('create-order:p99=fast')).toThrow(
      "p99 needs a number, got 'fast'",
    );
  });

  it('tightens a budget in a copy of the model, which compiles to the tightened threshold', () => {
    const m = applyBudgetOverrides(model, [parseBudgetOverride('create-order:p99=0.01')]);
    const p99 = (x: typeof model) =>
      compileK6Thresholds(x).thresholds.find(
        (t) => t.metric === 'http_req_duration' && t.tags.route === 'create-order',
      )?.value;
    expect(p99(m)).toBe(0.01);
    // The original is untouched.
    expect(p99(model)).toBe(10);
    const mesh = applyBudgetOverrides(model, [parseBudgetOverride('mesh:p50=0.5')]);
    expect(mesh.budgets?.mesh).toEqual({ p50Ms: 0.5, p99Ms: 1, rps: 500 });
  });

  it('rejects unknown routes and invalid values with the field named', () => {
    expect(() => applyBudgetOverrides(model, [parseBudgetOverride('refunds:p99=3')])).toThrow(
      "--budget-override refunds: p99=3: no route 'refunds' in the model (routes: create-order, get-order; or mesh)",
    );
    expect(() => applyBudgetOverrides(model, [parseBudgetOverride('get-order:p99=-1')])).toThrow(
      /routes\.get-order\.budget\.p99Ms/,
    );
    expect(() => applyBudgetOverrides(model, [parseBudgetOverride('mesh:errors=0.1')])).toThrow(
      'the mesh budget has no error rate',
    );
  });
});

describe('scenario arguments', () => {
  it('parses k6-style durations', () => {
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration('2m')).toBe(120);
    expect(parseDuration('1m30s')).toBe(90);
    expect(parseDuration('1500ms')).toBe(1.5);
    expect(parseDuration('45')).toBe(45);
    expect(() => parseDuration('2x', '--duration')).toThrow(
      "--duration: '2x' is not a duration like 30s, 2m or 1m30s",
    );
    expect(() => parseDuration('0s', '--warmup')).toThrow("--warmup: '0s' must be more than zero");
    expect(k6Duration(90)).toBe('90s');
    expect(k6Duration(1.25)).toBe('1250ms');
  });

  it('knows its scenarios', () => {
    expect(parseScenario('read-heavy')).toBe('read-heavy');
    expect(() => parseScenario('soak')).toThrow(
      "--scenario: 'soak' is not one of smoke, steady, spike, read-heavy, write-heavy",
    );
  });
});
