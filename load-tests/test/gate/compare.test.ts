/**
 * The gate's decision: known outcomes, input checks, and properties over seeded simulated runs. The
 * noise is simulated (lognormal block figures, rounded like Envoy's coarse timings to make ties); no
 * number here is a measurement of Trellis.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareSamples,
  judgeBlocks,
  type BlockObservation,
  type GateMetric,
} from '../../src/gate/compare.ts';
import { formatGateTable } from '../../src/gate/format.ts';
import { planBlocks, type BlockPlan } from '../../src/gate/plan.ts';
import { seededRandom, type Random } from '../../src/gate/random.ts';

const traversal: GateMetric = {
  key: 'traversal:sidecar',
  label: 'orders-api sidecar − floor',
  unit: 'ms',
  minShift: 0.1,
  minRelativeShift: 0.1,
};
const cpu: GateMetric = {
  key: 'cpu:orders-api',
  label: 'orders-api CPU',
  unit: 'CPU-ms/req',
  minShift: 0.05,
  minRelativeShift: 0.1,
};
/** The pure rank test: no minimum effect, to measure its false-alarm rate alone. */
const bare: GateMetric = { ...traversal, minShift: 0, minRelativeShift: 0 };

/** A standard normal draw (Box–Muller). */
function normal(r: Random): number {
  const u = 1 - r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** A lognormal block figure around `median` (σ of the log = `spread`), to `step` resolution. */
function lognormal(r: Random, median: number, spread: number, step = 0): number {
  const x = median * Math.exp(spread * normal(r));
  return step > 0 ? Math.round(x / step) * step : x;
}

/** Observations of a plan's blocks, each arm's figure from `sample(arm, block time)`. */
function observe(
  plan: BlockPlan,
  sample: (arm: 'A' | 'B', t: number) => Record<string, number>,
): BlockObservation[] {
  return plan.blocks.map((b) => ({ block: b.index, values: sample(b.arm, b.startS) }));
}

describe('compareSamples: known outcomes', () => {
  const a = [0.41, 0.52, 0.38, 0.61, 0.47, 0.55, 0.43, 0.39, 0.58, 0.5];

  it('a large, clean shift is a regression, with p, shift and Cliff’s delta', () => {
    const b = a.map((x) => x + 2);
    const v = compareSamples(a, b, traversal, 0.01);
    expect(v.outcome).toBe('regression');
    expect(v.shift).toBeCloseTo(2, 12);
    expect(v.cliffsDelta).toBe(1);
    expect(v.u).toBe(100);
    // scipy.stats.mannwhitneyu(b, a): 10 vs 10, complete separation (scipy-reference: separated10).
    expect(v.p).toBeCloseTo(0.00018267179110955002, 15);
    expect(v.method).toBe('asymptotic');
    expect(v.ratio).toBeCloseTo((0.485 + 2) / 0.485, 12);
    expect(v.reason).toBe('p = 0.000183 < α = 0.01 and shift +2.00 ms (minimum 0.100)');
  });

  it('significant but below the minimum effect is no change', () => {
    // Tight figures (1.000–1.009 ms): +0.02 ms separates them completely, yet is under 0.1 ms.
    const tight = Array.from({ length: 10 }, (_, i) => 1 + i / 1000);
    const v = compareSamples(
      tight,
      tight.map((x) => x + 0.02),
      traversal,
      0.01,
    );
    expect(v.p).toBeLessThan(0.001);
    expect(v.outcome).toBe('no change');
    expect(v.reason).toMatch(
      /but shift \+0\.0200 ms \(minimum 0\.100\) is below the minimum effect/,
    );
  });

  it('a large shift that noise explains is no change', () => {
    const v = compareSamples([1, 9, 2, 8, 3], [2, 10, 3, 9, 4], { ...bare, minShift: 0.5 }, 0.01);
    expect(v.shift).toBeCloseTo(1, 12);
    expect(v.outcome).toBe('no change');
    expect(v.reason).toMatch(/^p = 0\.\d+ ≥ α = 0\.01/);
  });

  it('a clear drop is an improvement (the gate passes)', () => {
    const v = compareSamples(
      a,
      a.map((x) => x / 2),
      traversal,
      0.01,
    );
    expect(v.outcome).toBe('improvement');
    expect(v.shift).toBeLessThan(0);
  });

  it('the relative minimum scales with A’s median', () => {
    const big = Array.from({ length: 10 }, (_, i) => 100 + i / 10); // median 100.45: minimum 10.045
    const at = (d: number) =>
      compareSamples(
        big,
        big.map((x) => x + d),
        traversal,
        0.01,
      );
    expect(at(3).minEffect).toBeCloseTo(10.045, 12);
    expect(at(3).p).toBeLessThan(0.001);
    expect(at(3).outcome).toBe('no change');
    expect(at(12).outcome).toBe('regression');
  });

  it('too few blocks to reach alpha is inconclusive, never a pass by default', () => {
    const v = compareSamples([1, 2, 3], [10, 11, 12], traversal, 0.01);
    expect(v.outcome).toBe('inconclusive');
    expect(v.reason).toBe(
      'too few blocks (3 A, 3 B): the smallest p they can give is 0.100, not below α = 0.01',
    );
  });
});

describe('judgeBlocks', () => {
  const plan = planBlocks({ pairs: 8, blockS: 10, seed: 3 });

  it('judges only the non-warm-up blocks, every metric, and fails on one regression', () => {
    const obs = observe(plan, (arm, t) => ({
      [traversal.key]: 0.5 + t / 10_000 + (arm === 'B' ? 2 : 0),
      [cpu.key]: 1 + t / 100_000,
    }));
    // A warm-up block may carry anything; it is not judged.
    const warm = obs.find((o) => plan.blocks[o.block]?.warmup);
    if (warm) warm.values = {};
    const v = judgeBlocks(plan, obs, [traversal, cpu]);
    expect(v.outcome).toBe('fail');
    expect(v.metrics.map((m) => [m.metric.key, m.outcome, m.nA, m.nB])).toEqual([
      [traversal.key, 'regression', 8, 8],
      [cpu.key, 'no change', 8, 8],
    ]);
    expect(v.metrics[0]?.pairedShift).toBeCloseTo(2, 1);
    expect(v.missingBlocks).toEqual([]);
  });

  it('a missing block is listed and the rest judged', () => {
    const obs = observe(plan, (arm) => ({ [traversal.key]: arm === 'A' ? 1 : 1 }));
    const judgedA = plan.blocks.find((b) => !b.warmup && b.arm === 'A');
    const v = judgeBlocks(
      plan,
      obs.filter((o) => o.block !== judgedA?.index),
      [traversal],
    );
    expect(v.missingBlocks).toEqual([judgedA?.index]);
    expect(v.metrics[0]).toMatchObject({ nA: 7, nB: 8, outcome: 'no change' });
    expect(v.outcome).toBe('pass');
  });

  it('names what is wrong with the input', () => {
    const ok = observe(plan, () => ({ [traversal.key]: 1 }));
    const judged = plan.blocks.find((b) => !b.warmup)?.index ?? -1;
    const at = ok.findIndex((o) => o.block === judged);
    const edit = (values: Record<string, number>) =>
      ok.map((o, i) => (i === at ? { ...o, values } : o));
    expect(() => judgeBlocks(plan, [...ok, { block: 99, values: {} }], [traversal])).toThrow(
      `observations[${ok.length}].block: no block 99 in the plan`,
    );
    expect(() =>
      judgeBlocks(plan, [...ok, { ...ok[at], block: judged, values: {} }], [traversal]),
    ).toThrow(`observations[${ok.length}].block: block ${judged} is observed twice`);
    expect(() => judgeBlocks(plan, edit({}), [traversal])).toThrow(
      `observations[${at}].values["traversal:sidecar"]: missing (block ${judged})`,
    );
    expect(() => judgeBlocks(plan, edit({ [traversal.key]: Number.NaN }), [traversal])).toThrow(
      `observations[${at}].values["traversal:sidecar"]: NaN is not a finite number`,
    );
    expect(() => judgeBlocks(plan, ok, [traversal, traversal])).toThrow(
      "metrics[1].key: 'traversal:sidecar' is named twice",
    );
    expect(() => judgeBlocks(plan, ok, [{ ...traversal, minShift: -1 }])).toThrow(
      'metrics[0].minShift: -1 must be a number, zero or more',
    );
    expect(() => judgeBlocks(plan, ok, [])).toThrow('metrics: name at least one metric');
  });

  it('no observed block in one arm is inconclusive', () => {
    const obs = observe(plan, () => ({ [traversal.key]: 1 })).filter(
      (o) => plan.blocks[o.block]?.arm === 'A',
    );
    const v = judgeBlocks(plan, obs, [traversal]);
    expect(v.outcome).toBe('inconclusive');
    expect(v.metrics[0]?.reason).toBe('no observed block in one arm');
  });
});

describe('formatGateTable', () => {
  it('renders the headline, the schedule and one row per metric', () => {
    const plan = planBlocks({ pairs: 10, blockS: 30, seed: 5 });
    const r = seededRandom(11);
    const obs = observe(plan, (arm) => ({
      [traversal.key]: lognormal(r, arm === 'B' ? 2.5 : 0.5, 0.1),
      [cpu.key]: lognormal(r, 1.2, 0.05),
    }));
    const md = formatGateTable(judgeBlocks(plan, obs, [traversal, cpu]), plan);
    expect(md).toContain('**Regression gate: FAIL: a metric regressed**');
    expect(md).toContain(
      '10 A/B pairs of 30 s blocks (randomized, seed 5), 1 warm-up pair(s) not judged; α = 0.01; A = baseline, B = candidate.',
    );
    expect(md).toMatch(
      /\| orders-api sidecar − floor \(ms\) \| 0\.\d+ \| 2\.\d+ \| \+[12]\.\d+ \| 0\.1 \| \d\.\d+× \| 1 \| 100 \| 1\.83e-4 \(asymptotic, 10 A \/ 10 B\) \| \*\*REGRESSION\*\* \| p = 0\.000183 < α = 0\.01 and shift/,
    );
    expect(md).toMatch(/\| orders-api CPU \(CPU-ms\/req\) \| .* \| no change \| p = /);
    const pass = formatGateTable(
      judgeBlocks(
        plan,
        observe(plan, () => ({ [traversal.key]: 1 })),
        [traversal],
      ),
    );
    expect(pass).toContain('**Regression gate: PASS: no metric regressed**');
    expect(pass).not.toContain('pairs of');
  });
});

describe('properties over seeded simulated runs', () => {
  /** The share of `trials` A/A runs the rank test alone flags, and the share the gate fails. */
  function aaRates(
    trials: number,
    alpha: number,
    sample: (r: Random, t: number) => number,
    plan: BlockPlan,
  ): { significant: number; failed: number } {
    let significant = 0;
    let failed = 0;
    for (let s = 0; s < trials; s++) {
      const r = seededRandom(1000 + s);
      const obs = observe(plan, (_arm, t) => ({
        [bare.key]: sample(r, t),
        [`${bare.key}:gated`]: sample(r, t),
      }));
      const v = judgeBlocks(plan, obs, [bare, { ...traversal, key: `${bare.key}:gated` }], {
        alpha,
      });
      if ((v.metrics[0]?.p ?? 1) < alpha) significant++;
      if (v.metrics[1]?.outcome === 'regression') failed++;
    }
    return { significant: significant / trials, failed: failed / trials };
  }

  /** alpha + 4 standard errors of a rate over `n` trials: a bound an honest test stays under. */
  const bound = (alpha: number, n: number) => alpha + 4 * Math.sqrt((alpha * (1 - alpha)) / n);

  it('A/A with identical, heavy-tailed, tied distributions: the rank test flags about alpha, the gate less', () => {
    const plan = planBlocks({ pairs: 10, blockS: 10, seed: 9, alpha: 0.05 });
    const trials = 2000;
    // 0.1 ms steps make ties, as Envoy's coarse histograms do.
    const rate = aaRates(trials, 0.05, (r) => lognormal(r, 1, 0.5, 0.1), plan);
    expect(rate.significant).toBeLessThanOrEqual(bound(0.05, trials));
    // Not vacuous: the test does reject about as often as alpha says.
    expect(rate.significant).toBeGreaterThan(0.02);
    // The gate needs B higher (one side of the two-sided test) and a minimum effect.
    expect(rate.failed).toBeLessThanOrEqual(bound(0.025, trials));
  });

  it('A/A at the default alpha (0.01) fails the gate rarely', () => {
    const plan = planBlocks({ pairs: 10, blockS: 10, seed: 4 });
    const trials = 2000;
    const rate = aaRates(trials, 0.01, (r) => lognormal(r, 1, 0.3), plan);
    expect(rate.significant).toBeLessThanOrEqual(bound(0.01, trials));
    expect(rate.failed).toBeLessThanOrEqual(bound(0.005, trials));
  });

  it('A/A under a strong drift: interleaved blocks stay calm, a sequential A-then-B run does not', () => {
    // The machine slows down through the run: +1 ms over 400 s, against 0.1 ms of noise.
    const drift = (r: Random, t: number) => lognormal(r, 1, 0.1) + t / 400;
    const interleaved = planBlocks({ pairs: 10, blockS: 20, seed: 2, alpha: 0.05 });
    const sequential: BlockPlan = {
      ...interleaved,
      blocks: interleaved.blocks
        .map((b) => b)
        .sort((x, y) => (x.warmup === y.warmup ? x.arm.localeCompare(y.arm) : x.warmup ? -1 : 1))
        .map((b, i) => ({ ...b, index: i, startS: i * 20 })),
    };
    const trials = 300;
    expect(aaRates(trials, 0.05, drift, interleaved).significant).toBeLessThanOrEqual(
      bound(0.05, trials),
    );
    expect(aaRates(trials, 0.05, drift, sequential).failed).toBeGreaterThan(0.95);
  });

  it('a large shift always fails the gate (B = A + 2 ms, 0.1–0.3 noise), and a doubled CPU too', () => {
    const plan = planBlocks({ pairs: 10, blockS: 10, seed: 6 });
    for (let s = 0; s < 500; s++) {
      const r = seededRandom(5000 + s);
      const obs = observe(plan, (arm) => ({
        [traversal.key]: lognormal(r, 0.6, 0.3, 0.01) + (arm === 'B' ? 2 : 0),
        [cpu.key]: lognormal(r, 1.5, 0.1) * (arm === 'B' ? 2 : 1),
      }));
      const v = judgeBlocks(plan, obs, [traversal, cpu]);
      expect(v.metrics.map((m) => m.outcome)).toEqual(['regression', 'regression']);
    }
  });

  it('any B fully above A by at least the minimum effect is a regression (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.05, max: 20, noNaN: true }), { minLength: 8, maxLength: 25 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 8, maxLength: 25 }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        (a, jitter, extra) => {
          const top = Math.max(...a);
          const minEffect = Math.max(traversal.minShift, traversal.minRelativeShift * top);
          // Every B value lies above every A value, and the whole of B by at least the minimum.
          const b = jitter.map((j) => top + minEffect + j + extra);
          const v = compareSamples(a, b, traversal, 0.01);
          expect(v.outcome).toBe('regression');
          expect(v.cliffsDelta).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('swapping A and B turns a regression into an improvement with the same p (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 8, maxLength: 20 }),
        fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 8, maxLength: 20 }),
        (a, b) => {
          const ab = compareSamples(a, b, bare, 0.01);
          const ba = compareSamples(b, a, bare, 0.01);
          expect(ba.p).toBeCloseTo(ab.p, 12);
          expect(ba.shift).toBeCloseTo(-ab.shift, 12);
          const mirror = { regression: 'improvement', improvement: 'regression' } as const;
          if (ab.outcome === 'regression' || ab.outcome === 'improvement')
            expect(ba.outcome).toBe(mirror[ab.outcome]);
          else expect(ba.outcome).toBe(ab.outcome);
        },
      ),
      { numRuns: 200 },
    );
  });
});
