/**
 * The stack config keys of a test stack's SLO check (ADR 0025): `scrapeInterval`, `sloTimeScale`,
 * `sloBudgets` and `faultInjection`. The committed stacks parse; a bad value fails naming its key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseLocalConfig, sloBudgetsProblem } from '../config.ts';
import { loadModelFile } from '@trellis/components/model';

const dir = join(import.meta.dirname, '..');
/** A committed stack's `trellis-local:*` values, without the prefix. */
function stackConfig(stack: string): Record<string, unknown> {
  const file = parse(readFileSync(join(dir, `Pulumi.${stack}.yaml`), 'utf8')) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(file.config).map(([k, v]) => [k.replace(/^trellis-local:/, ''), v]),
  );
}
const errors = (raw: Record<string, unknown>): string[] => {
  const r = parseLocalConfig(raw);
  return r.ok ? [] : r.errors;
};

describe('stack config: the SLO time scale and fault injection of a test stack', () => {
  it('local runs production timing and budgets, without fault filters; e2e the scaled check', () => {
    const local = parseLocalConfig(stackConfig('local'));
    expect(local.ok && local.config).toMatchObject({
      scrapeInterval: '15s',
      sloTimeScale: 1,
      sloBudgets: 'production',
      faultInjection: false,
    });
    const e2e = parseLocalConfig(stackConfig('e2e'));
    expect(e2e.ok && e2e.config).toMatchObject({
      scrapeInterval: '2s',
      sloTimeScale: 30,
      sloBudgets: 'ci',
      faultInjection: true,
    });
  });

  it('refuses a bad value, naming the key', () => {
    const base = stackConfig('e2e');
    expect(errors({ ...base, sloTimeScale: '2.5' })).toEqual([
      'trellis-local:sloTimeScale: must be a whole number',
    ]);
    expect(errors({ ...base, sloTimeScale: '60' })).toEqual([
      'trellis-local:sloTimeScale: 60 shrinks the 5m window to 5s, under 4 intervals of a 2s scrape (8s): use at most 30, or scrape more often (trellis-local:scrapeInterval is 2s)',
    ]);
    expect(errors({ ...base, sloTimeScale: '7' })).toEqual([
      'trellis-local:sloTimeScale: 7 does not divide 5m, 30m, 1h, 2h, 6h, 1d, 3d, 15m into whole seconds: use a divisor of 300 (e.g. 10, 15, 20, 30, 60) (trellis-local:scrapeInterval is 2s)',
    ]);
    // The committed scale at the production scrape interval: the 10 s window spans under one scrape.
    expect(errors({ ...base, scrapeInterval: '15s' })).toEqual([
      'trellis-local:sloTimeScale: 30 shrinks the 5m window to 10s, under 4 intervals of a 15s scrape (1m): use at most 5, or scrape more often (trellis-local:scrapeInterval is 15s)',
    ]);
    expect(errors({ ...base, scrapeInterval: 'often' })[0]).toBe(
      'trellis-local:scrapeInterval: must be a duration such as 15s, 2s or 1m',
    );
    expect(errors({ ...base, faultInjection: 'yes' })).toEqual([
      'trellis-local:faultInjection: must be true or false',
    ]);
  });

  it('reads the edge certificate rotation counter (default 0), refusing a negative or fractional one', () => {
    const base = stackConfig('local');
    const parsed = parseLocalConfig({ ...base, edgeRotation: '2' });
    expect(parsed.ok && parsed.config.edgeRotation).toBe(2);
    const absent = parseLocalConfig(base);
    expect(absent.ok && absent.config.edgeRotation).toBe(0);
    expect(errors({ ...base, edgeRotation: '-1' })[0]).toMatch(/^trellis-local:edgeRotation: /);
    expect(errors({ ...base, edgeRotation: '1.5' })[0]).toMatch(/^trellis-local:edgeRotation: /);
  });

  it("refuses budgets the model does not declare, naming the key and the model's environments", () => {
    const model = loadModelFile(join(dir, '../../trellis.yaml'), 'trellis-local:model');
    expect(sloBudgetsProblem(model, 'ci')).toBeUndefined();
    expect(sloBudgetsProblem(model, 'production')).toBeUndefined();
    expect(sloBudgetsProblem(model, 'staging')).toBe(
      "trellis-local:sloBudgets: 'staging' is not an environment of the model's budgets (known: production, ci)",
    );
  });
});
