/** The interleaved block schedule and the per-block figures. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ALPHA,
  minAchievableP,
  minPairsFor,
  planBlocks,
  type BlockPlan,
} from '../../src/gate/plan.ts';
import { seededRandom } from '../../src/gate/random.ts';
import { cpuMsPerRequest, floorAdjustedLatency } from '../../src/gate/samples.ts';

const arms = (p: BlockPlan) => p.blocks.map((b) => b.arm).join('');

describe('planBlocks', () => {
  it('alternate: A/B/A/B…, a warm-up pair first, back to back with gaps', () => {
    const p = planBlocks({ pairs: 5, blockS: 20, gapS: 2, order: 'alternate' });
    expect(arms(p)).toBe('AB'.repeat(6));
    expect(p.blocks.filter((b) => b.warmup).map((b) => b.index)).toEqual([0, 1]);
    expect(p.blocks.slice(0, 3).map((b) => [b.startS, b.durationS, b.pair])).toEqual([
      [0, 20, 0],
      [22, 20, 0],
      [44, 20, 1],
    ]);
    // 12 blocks of 20 s and 11 gaps of 2 s.
    expect(p.totalS).toBe(12 * 20 + 11 * 2);
    expect(p).toMatchObject({ pairs: 5, warmupPairs: 1, alpha: DEFAULT_ALPHA });
  });

  it('counterbalanced: AB, BA, AB, … so a linear drift cancels over two pairs', () => {
    const p = planBlocks({ pairs: 6, blockS: 10, warmupPairs: 0, order: 'counterbalanced' });
    expect(arms(p)).toBe('ABBAABBAABBA');
  });

  it('randomized (the default): each pair is AB or BA from the seed, the same for the same seed', () => {
    const p = planBlocks({ pairs: 30, blockS: 10, seed: 7 });
    expect(p.order).toBe('randomized');
    expect(arms(p)).toBe(arms(planBlocks({ pairs: 30, blockS: 10, seed: 7 })));
    expect(arms(p)).not.toBe(arms(planBlocks({ pairs: 30, blockS: 10, seed: 8 })));
    const pairs = Array.from({ length: 31 }, (_, i) =>
      p.blocks
        .filter((b) => b.pair === i)
        .map((b) => b.arm)
        .join(''),
    );
    // Every pair holds one block of each arm, in both orders over the run.
    expect(new Set(pairs)).toEqual(new Set(['AB', 'BA']));
    expect(p.blocks.filter((b) => !b.warmup && b.arm === 'A')).toHaveLength(30);
    expect(p.blocks.filter((b) => !b.warmup && b.arm === 'B')).toHaveLength(30);
  });

  it('refuses too few pairs to ever reach alpha, naming how many would', () => {
    expect(minAchievableP(4, 4)).toBeCloseTo(2 / 70, 12); // every ordering of 4 + 4 is one of C(8, 4)
    expect(minPairsFor(0.01)).toBe(5);
    expect(minPairsFor(0.05)).toBe(4);
    expect(() => planBlocks({ pairs: 4, blockS: 10 })).toThrow(
      'pairs: 4 pairs can never reach p < 0.01 (the smallest p with 4 blocks per arm is 0.0286); use at least 5',
    );
    expect(planBlocks({ pairs: 4, blockS: 10, alpha: 0.05 }).minP).toBeCloseTo(2 / 70, 12);
  });

  it('names the field of a value that makes no run', () => {
    expect(() => planBlocks({ pairs: 1.5, blockS: 10 })).toThrow(
      'pairs: 1.5 must be an integer of at least 2',
    );
    expect(() => planBlocks({ pairs: 10, blockS: 0 })).toThrow('blockS: 0 must be a number');
    expect(() => planBlocks({ pairs: 10, blockS: 5, gapS: -1 })).toThrow('gapS: -1');
    expect(() => planBlocks({ pairs: 10, blockS: 5, warmupPairs: -1 })).toThrow('warmupPairs: -1');
    expect(() => planBlocks({ pairs: 10, blockS: 5, alpha: 1 })).toThrow('alpha: 1');
    expect(() => planBlocks({ pairs: 10, blockS: 5, seed: 0.5 })).toThrow('seed: 0.5');
  });
});

describe('seededRandom', () => {
  it('is deterministic per seed and spread over [0, 1)', () => {
    const a = seededRandom(42);
    const xs = Array.from({ length: 10_000 }, a);
    const b = seededRandom(42);
    expect(Array.from({ length: 5 }, b)).toEqual(xs.slice(0, 5));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    // Each tenth of [0, 1) gets 1,000 ± 150 of 10,000 draws.
    for (let d = 0; d < 10; d++) {
      const n = xs.filter((x) => x >= d / 10 && x < (d + 1) / 10).length;
      expect(n).toBeGreaterThan(850);
      expect(n).toBeLessThan(1150);
    }
  });
});

describe('per-block figures', () => {
  it('floor-adjusted latency: difference of medians, or median of paired differences', () => {
    expect(floorAdjustedLatency({ traversalMs: [1.2, 1.0, 5.0], floorMs: [0.4, 0.3, 0.5] })).toBe(
      1.2 - 0.4,
    );
    // Paired: the outlier iteration (both paths slow together) cancels.
    expect(
      floorAdjustedLatency({
        traversalMs: [1.0, 1.1, 9.0],
        floorMs: [0.5, 0.5, 8.4],
        paired: true,
      }),
    ).toBeCloseTo(0.6, 12);
    expect(() => floorAdjustedLatency({ traversalMs: [1, 2], floorMs: [1], paired: true })).toThrow(
      'floorMs: 1 requests, but traversalMs has 2',
    );
    expect(() => floorAdjustedLatency({ traversalMs: [], floorMs: [1] })).toThrow(
      'traversalMs: no request in the block',
    );
    expect(() => floorAdjustedLatency({ traversalMs: [1], floorMs: [-1] })).toThrow(
      'floorMs[0]: -1 is not a time in ms',
    );
  });

  it('CPU-ms per request per component, refusing a counter that went back', () => {
    expect(cpuMsPerRequest({ envoy: 1000, app: 500 }, { envoy: 1150, app: 800 }, 300)).toEqual({
      envoy: 0.5,
      app: 1,
    });
    expect(() => cpuMsPerRequest({ envoy: 1000 }, { envoy: 900 }, 10)).toThrow(
      'after["envoy"]: 900 CPU-ms is below before (1000)',
    );
    expect(() => cpuMsPerRequest({ envoy: 1 }, { envoy: 2, app: 1 }, 10)).toThrow(
      'before["app"]: missing',
    );
    expect(() => cpuMsPerRequest({ envoy: 1 }, {}, 10)).toThrow('after["envoy"]: missing');
    expect(() => cpuMsPerRequest({}, {}, 0)).toThrow('requests: 0');
  });
});
