import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLoadArgs } from '../../packages/cli/src/verbs/load.ts';

describe('./trellis load arguments', () => {
  it('defaults to the steady budget run against the local stack', () => {
    const a = parseLoadArgs([]);
    expect(a).toMatchObject({
      scenario: 'steady',
      stack: 'local',
      as: 'alice',
      budgetOverrides: [],
    });
    expect(a.out.endsWith(join('main', 'reports')) || a.out.endsWith('reports')).toBe(true);
    expect(a.rps).toBeUndefined();
  });

  it('parses every option', () => {
    const a = parseLoadArgs([
      '--scenario',
      'smoke',
      '--stack',
      'e2e',
      '--rps',
      '1500',
      '--duration',
      '1m30s',
      '--warmup',
      '10s',
      '--mesh-rate',
      '5',
      '--budget-override',
      'create-order:p99=0.01',
      '--budget-override',
      'mesh:p50=1',
      '--as',
      'reporting-bot',
      '--no-abort',
    ]);
    expect(a).toMatchObject({
      scenario: 'smoke',
      stack: 'e2e',
      rps: 1500,
      durationS: 90,
      warmupS: 10,
      meshRate: 5,
      as: 'reporting-bot',
      noAbort: true,
      budgetOverrides: ['create-order:p99=0.01', 'mesh:p50=1'],
    });
  });

  it('names the bad option', () => {
    expect(() => parseLoadArgs(['--scenario', 'soak'])).toThrow("--scenario: 'soak' is not one of");
    expect(() => parseLoadArgs(['--rps', '0'])).toThrow("--rps: '0' must be a number above zero");
    expect(() => parseLoadArgs(['--duration', 'forever'])).toThrow(
      "--duration: 'forever' is not a duration",
    );
    expect(() => parseLoadArgs(['--budget-override', 'p99=1'])).toThrow('--budget-override');
    expect(() => parseLoadArgs(['--nope'])).toThrow(
      /Unknown option '--nope'[\s\S]*usage: \.\/trellis load/,
    );
  });
});
