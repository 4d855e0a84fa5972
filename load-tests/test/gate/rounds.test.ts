/** The multi-arm schedule (one run judging several candidates) and its two-arm comparisons. */
import { describe, expect, it } from 'vitest';
import { judgeBlocks } from '../../src/gate/compare.ts';
import { comparisonPlan, planRounds } from '../../src/gate/plan.ts';

const arms = ['A', 'A2', 'delay', 'burn'];

describe('planRounds', () => {
  it('loads every arm once per round, warm-up round first, with gaps between blocks', () => {
    const p = planRounds({ arms, rounds: 6, blockS: 2, gapS: 0.5, seed: 3 });
    expect(p.blocks).toHaveLength(4 * 7);
    for (let r = 0; r < 7; r++)
      expect(
        p.blocks
          .filter((b) => b.round === r)
          .map((b) => b.arm)
          .sort(),
      ).toEqual([...arms].sort());
    expect(p.blocks.filter((b) => b.warmup).map((b) => b.round)).toEqual([0, 0, 0, 0]);
    expect(p.blocks.map((b) => b.index)).toEqual(p.blocks.map((_, i) => i));
    expect(p.blocks[1]?.startS).toBe(2.5);
    expect(p.totalS).toBe(28 * 2 + 27 * 0.5);
  });

  it('draws a fresh order per round from the seed: the same seed, the same schedule', () => {
    const order = (seed: number) =>
      planRounds({ arms, rounds: 20, blockS: 1, seed })
        .blocks.map((b) => b.arm)
        .join(',');
    expect(order(5)).toBe(order(5));
    expect(order(5)).not.toBe(order(6));
    // Over many rounds each arm is first in some round: no arm is always loaded in one position.
    const p = planRounds({ arms, rounds: 40, blockS: 1, seed: 9 });
    const firsts = new Set(p.blocks.filter((b) => b.index % 4 === 0).map((b) => b.arm));
    expect([...firsts].sort()).toEqual([...arms].sort());
  });

  it('refuses what makes no usable run, naming the field', () => {
    expect(() => planRounds({ arms: ['A'], rounds: 6, blockS: 1 })).toThrow(/^arms:/);
    expect(() => planRounds({ arms: ['A', 'A'], rounds: 6, blockS: 1 })).toThrow(
      /^arms\[1\]: 'A' is named twice/,
    );
    expect(() => planRounds({ arms: ['A', ''], rounds: 6, blockS: 1 })).toThrow(/^arms\[1\]/);
    expect(() => planRounds({ arms, rounds: 4, blockS: 1 })).toThrow(
      /^rounds: 4 rounds can never reach p < 0\.01.*use at least 5/,
    );
    expect(() => planRounds({ arms, rounds: 6, blockS: 0 })).toThrow(/^blockS:/);
    expect(() => planRounds({ arms, rounds: 6, blockS: 1, gapS: -1 })).toThrow(/^gapS:/);
    expect(() => planRounds({ arms, rounds: 6, blockS: 1, warmupRounds: -1 })).toThrow(
      /^warmupRounds:/,
    );
  });
});

describe('comparisonPlan', () => {
  const p = planRounds({ arms, rounds: 6, blockS: 2, seed: 1 });

  it("keeps the two arms' blocks and indices, baseline as A and candidate as B, a round a pair", () => {
    const c = comparisonPlan(p, 'A', 'delay');
    expect(c.blocks).toHaveLength(14);
    for (const b of c.blocks) {
      const orig = p.blocks[b.index];
      expect(orig?.arm).toBe(b.arm === 'A' ? 'A' : 'delay');
      expect(b.pair).toBe(orig?.round);
      expect(b.warmup).toBe(orig?.warmup);
    }
    expect(c).toMatchObject({ pairs: 6, warmupPairs: 1, alpha: 0.01 });
  });

  it('judges with the gate library: a candidate higher in every round is a regression', () => {
    const c = comparisonPlan(p, 'A', 'delay');
    const obs = c.blocks.map((b) => ({
      block: b.index,
      values: { t: (b.arm === 'B' ? 2.5 : 0.5) + b.pair * 0.01 },
    }));
    const v = judgeBlocks(c, obs, [
      { key: 't', label: 't', unit: 'ms', minShift: 0.25, minRelativeShift: 0.3 },
    ]);
    expect(v.outcome).toBe('fail');
    expect(v.metrics[0]?.shift).toBeCloseTo(2, 5);
  });

  it('refuses an arm the plan does not have, or a baseline against itself', () => {
    expect(() => comparisonPlan(p, 'Z', 'A')).toThrow(/^baseline: no arm 'Z'/);
    expect(() => comparisonPlan(p, 'A', 'Z')).toThrow(/^candidate: no arm 'Z'/);
    expect(() => comparisonPlan(p, 'A', 'A')).toThrow(/^candidate: 'A' is the baseline itself/);
  });
});
