import { describe, expect, it } from 'vitest';
import {
  blockFigures,
  limitVerdict,
  shiftInterval,
  type BlockMeasurement,
  type ProbeBlock,
} from '../bench/pod-overhead-figures.ts';

const probe = (p: Partial<ProbeBlock>): ProbeBlock => ({
  sidecar: [],
  direct: [],
  diffs: [],
  sidecarRequests: 0,
  directRequests: 0,
  failures: 0,
  ...p,
});

const block = (over: Partial<BlockMeasurement> = {}): BlockMeasurement => ({
  local: probe({
    sidecar: [1.0, 1.2, 5.0],
    direct: [0.3, 0.4, 0.2],
    diffs: [0.7, 0.8, 4.8],
    sidecarRequests: 3,
    directRequests: 3,
  }),
  cross: probe({ sidecar: [1.5, 1.6, 1.4, 9], sidecarRequests: 5, failures: 1 }),
  cpuBefore: { envoy: 1_000, app: 500 },
  cpuAfter: { envoy: 1_016, app: 511 },
  ...over,
});

describe('blockFigures', () => {
  it('takes the local traversal as the median paired difference, the cross one against the direct hop', () => {
    const f = blockFigures(block());
    expect(f['traversal:local']).toBeCloseTo(0.8, 10);
    // median(cross) 1.55 − median(direct) 0.3
    expect(f['traversal:cross']).toBeCloseTo(1.25, 10);
    // Envoy served 3 + 5 requests in 16 CPU-ms; the app 3 + 5 + 3 in 11.
    expect(f['cpu:envoy']).toBeCloseTo(2, 10);
    expect(f['cpu:app']).toBeCloseTo(1, 10);
    expect(f['median:direct']).toBeCloseTo(0.3, 10);
  });

  it('refuses a block in which a probe got no answer, naming it', () => {
    const b = block();
    expect(() => blockFigures({ ...b, local: { ...b.local, diffs: [] } })).toThrow('local.diffs');
    expect(() => blockFigures({ ...b, cross: probe({ sidecarRequests: 5, failures: 5 }) })).toThrow(
      'cross.sidecar: no request answered',
    );
  });

  it('refuses a CPU figure that went back (a restarted process)', () => {
    expect(() => blockFigures(block({ cpuAfter: { envoy: 10, app: 600 } }))).toThrow(
      'after["envoy"]',
    );
  });
});

describe('shiftInterval', () => {
  it('gives the Moses interval of the Hodges–Lehmann shift', () => {
    const a = Array.from({ length: 10 }, (_, i) => i + 1);
    const b = a.map((x) => x + 5);
    // 100 differences 5 + (i − j); C = floor(50 − 1.96·sqrt(175)) = 24: the 24th is 2, the 77th 8.
    expect(shiftInterval(a, b)).toEqual({ low: 2, high: 8 });
    expect(shiftInterval(b, a)).toEqual({ low: -8, high: -2 });
  });

  it('falls back to the extreme differences for tiny samples', () => {
    expect(shiftInterval([1, 2], [4, 8])).toEqual({ low: 2, high: 7 });
    expect(() => shiftInterval([], [1])).toThrow('a sample is empty');
  });
});

describe('limitVerdict', () => {
  it('says within only when the whole interval is under the limit, over only when above', () => {
    expect(limitVerdict({ low: -0.05, high: 0.04 }, 0.5, 0.1)).toBe('within');
    expect(limitVerdict({ low: 0.01, high: 0.06 }, 0.5, 0.1)).toBe('not settled');
    expect(limitVerdict({ low: 0.051, high: 0.2 }, 0.5, 0.1)).toBe('over');
    expect(() => limitVerdict({ low: 0, high: 0 }, 0, 0.1)).toThrow('medianA: 0');
  });
});
