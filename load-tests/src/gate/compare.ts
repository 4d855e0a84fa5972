/**
 * The regression gate's decision. For each metric (one figure per block, e.g. an Envoy traversal
 * minus the bare mTLS proxy floor of the same block, or one component's CPU-ms per request), the
 * judged A blocks are compared with the judged B blocks:
 *
 * - a Mann–Whitney U test (two-sided, as Pinpoint's; see stats.ts) says whether B's blocks differ
 *   from A's more than chance would explain: p < alpha;
 * - the Hodges–Lehmann shift (the median of every B − A difference) says by how much, and must be at
 *   least the metric's minimum effect: `max(minShift, minRelativeShift × |median of A|)`.
 *
 * A regression is both: significant and large enough. A significant shift too small to matter, or a
 * large one that noise could explain, is "no change". Chromium's Pinpoint decides the same way in
 * spirit: a rank test at a low alpha, with the size of the difference that matters set per metric.
 */
import { minAchievableP, type Arm, type BlockPlan } from './plan.ts';
import { cliffsDelta, hodgesLehmann, mannWhitneyU, median } from './stats.ts';

/** One metric the gate judges. */
export interface GateMetric {
  /** Its key in each block's values, e.g. `traversal:orders-api-sidecar` or `cpu:orders-api`. */
  key: string;
  /** What a person reads, e.g. `orders-api sidecar traversal − floor`. */
  label: string;
  /** e.g. `ms` or `CPU-ms/req`. */
  unit: string;
  /** The smallest B − A shift that counts, in the metric's unit (≥ 0). */
  minShift: number;
  /** The smallest shift as a fraction of A's median (|median|; ≥ 0), e.g. 0.1 for 10 %. */
  minRelativeShift: number;
}

/** One block's figures, by metric key. */
export interface BlockObservation {
  /** The block's `index` in the plan. */
  block: number;
  values: Record<string, number>;
}

/** What the gate concluded about one metric. */
export type MetricOutcome = 'regression' | 'improvement' | 'no change' | 'inconclusive';

/** One metric's figures and outcome. */
export interface MetricVerdict {
  metric: GateMetric;
  nA: number;
  nB: number;
  medianA: number;
  medianB: number;
  /** Hodges–Lehmann shift of B against A (positive: B is higher, i.e. slower or costlier). */
  shift: number;
  /** median B / median A, when A's median is above zero. */
  ratio: number | null;
  /** Cliff's delta of B against A, −1..1: how often a B block is above an A block, less below. */
  cliffsDelta: number;
  /** The median of B − A within each complete pair (reported, not judged). */
  pairedShift: number | null;
  /** Mann–Whitney U of B (pairs with b > a, ties ½), p and how p was computed (null: not tested). */
  u: number;
  p: number;
  method: 'exact' | 'asymptotic' | null;
  /** The shift the effect had to reach: max(minShift, minRelativeShift × |median A|). */
  minEffect: number;
  outcome: MetricOutcome;
  /** Why, in words (names p, alpha and the effect against its minimum). */
  reason: string;
}

/** The gate's verdict on a run. `fail`: some metric regressed. */
export interface GateVerdict {
  outcome: 'pass' | 'fail' | 'inconclusive';
  alpha: number;
  /** Judged pairs planned, and plan blocks with no observation. */
  pairs: number;
  missingBlocks: number[];
  metrics: MetricVerdict[];
}

/** Options of {@link judgeBlocks} and {@link compareSamples}. */
export interface GateOptions {
  /** @default the plan's alpha */
  alpha?: number;
}

function checkMetric(m: GateMetric, i: number): void {
  if (m.key === '') throw new Error(`metrics[${i}].key: must not be empty`);
  for (const f of ['minShift', 'minRelativeShift'] as const)
    if (!(Number.isFinite(m[f]) && m[f] >= 0))
      throw new Error(`metrics[${i}].${f}: ${m[f]} must be a number, zero or more`);
}

const fmt = (x: number): string => x.toPrecision(3);

/**
 * Compares A's and B's block figures for one metric at `alpha` (see the module comment).
 * `pairs` (optional) gives each B value's paired A value index, for the reported paired shift.
 */
export function compareSamples(
  a: readonly number[],
  b: readonly number[],
  metric: GateMetric,
  alpha: number,
  pairs: readonly (readonly [number, number])[] = [],
): MetricVerdict {
  checkMetric(metric, 0);
  const r = mannWhitneyU(b, a);
  const shift = hodgesLehmann(a, b);
  const medianA = median(a);
  const medianB = median(b);
  const minEffect = Math.max(metric.minShift, metric.minRelativeShift * Math.abs(medianA));
  const floorP = minAchievableP(a.length, b.length);
  const significant = r.p < alpha;
  const big = Math.abs(shift) >= minEffect && shift !== 0;
  const effect = `shift ${shift >= 0 ? '+' : ''}${fmt(shift)} ${metric.unit} (minimum ${fmt(minEffect)})`;
  let outcome: MetricOutcome;
  let reason: string;
  if (!(floorP < alpha)) {
    outcome = 'inconclusive';
    reason = `too few blocks (${a.length} A, ${b.length} B): the smallest p they can give is ${fmt(floorP)}, not below α = ${alpha}`;
  } else if (significant && big) {
    outcome = shift > 0 ? 'regression' : 'improvement';
    reason = `p = ${fmt(r.p)} < α = ${alpha} and ${effect}`;
  } else {
    outcome = 'no change';
    reason = significant
      ? `p = ${fmt(r.p)} < α = ${alpha}, but ${effect} is below the minimum effect`
      : `p = ${fmt(r.p)} ≥ α = ${alpha} (${effect})`;
  }
  const diffs = pairs.map(([ia, ib]) => (b[ib] as number) - (a[ia] as number));
  return {
    metric,
    nA: a.length,
    nB: b.length,
    medianA,
    medianB,
    shift,
    ratio: medianA > 0 ? medianB / medianA : null,
    cliffsDelta: cliffsDelta(a, b),
    pairedShift: diffs.length > 0 ? median(diffs) : null,
    u: r.u,
    p: r.p,
    method: r.method,
    minEffect,
    outcome,
    reason,
  };
}

/**
 * Judges a run: the observations of the plan's judged blocks (warm-up blocks are ignored), one
 * verdict per metric. Throws naming the observation or metric at fault (an unknown block, a block
 * seen twice, a missing or non-finite value, a duplicate metric key).
 */
export function judgeBlocks(
  plan: BlockPlan,
  observations: readonly BlockObservation[],
  metrics: readonly GateMetric[],
  o: GateOptions = {},
): GateVerdict {
  const alpha = o.alpha ?? plan.alpha;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha: ${alpha} must be between 0 and 1`);
  if (metrics.length === 0) throw new Error('metrics: name at least one metric to judge');
  const keys = new Set<string>();
  metrics.forEach((m, i) => {
    checkMetric(m, i);
    if (keys.has(m.key)) throw new Error(`metrics[${i}].key: '${m.key}' is named twice`);
    keys.add(m.key);
  });
  const byIndex = new Map(plan.blocks.map((b) => [b.index, b]));
  const seen = new Map<number, BlockObservation>();
  observations.forEach((ob, i) => {
    const block = byIndex.get(ob.block);
    if (!block) throw new Error(`observations[${i}].block: no block ${ob.block} in the plan`);
    if (seen.has(ob.block))
      throw new Error(`observations[${i}].block: block ${ob.block} is observed twice`);
    seen.set(ob.block, ob);
    if (block.warmup) return;
    for (const m of metrics) {
      const v = Object.hasOwn(ob.values, m.key) ? ob.values[m.key] : undefined;
      if (v === undefined)
        throw new Error(`observations[${i}].values["${m.key}"]: missing (block ${ob.block})`);
      if (!Number.isFinite(v))
        throw new Error(`observations[${i}].values["${m.key}"]: ${v} is not a finite number`);
    }
  });

  const judged = plan.blocks.filter((b) => !b.warmup);
  const missingBlocks = judged.filter((b) => !seen.has(b.index)).map((b) => b.index);
  const observed = judged.filter((b) => seen.has(b.index));
  const arm = (x: Arm) => observed.filter((b) => b.arm === x);
  const blocksA = arm('A');
  const blocksB = arm('B');
  // Complete pairs, as indices into the A and B lists.
  const pairIdx: [number, number][] = [];
  blocksB.forEach((bb, ib) => {
    const ia = blocksA.findIndex((ba) => ba.pair === bb.pair);
    if (ia >= 0) pairIdx.push([ia, ib]);
  });

  const results = metrics.map((m) => {
    const values = (bs: typeof observed) =>
      bs.map((b) => seen.get(b.index)?.values[m.key] as number);
    const a = values(blocksA);
    const b = values(blocksB);
    if (a.length === 0 || b.length === 0)
      return inconclusive(m, a.length, b.length, 'no observed block in one arm');
    return compareSamples(a, b, m, alpha, pairIdx);
  });
  const outcome = results.some((r) => r.outcome === 'regression')
    ? 'fail'
    : results.some((r) => r.outcome === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  return { outcome, alpha, pairs: plan.pairs, missingBlocks, metrics: results };
}

function inconclusive(metric: GateMetric, nA: number, nB: number, reason: string): MetricVerdict {
  return {
    metric,
    nA,
    nB,
    medianA: Number.NaN,
    medianB: Number.NaN,
    shift: Number.NaN,
    ratio: null,
    cliffsDelta: Number.NaN,
    pairedShift: null,
    u: Number.NaN,
    p: Number.NaN,
    method: null,
    minEffect: Number.NaN,
    outcome: 'inconclusive',
    reason,
  };
}
