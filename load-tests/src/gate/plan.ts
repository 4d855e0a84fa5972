/**
 * The block schedule of a regression-gate run: A (baseline) and B (candidate) run in short blocks,
 * interleaved in pairs, so that whatever drifts on a shared machine during the run (another job, a
 * JVM still compiling, thermal limits) falls on both arms alike instead of on whichever ran second.
 * The first pairs warm up and are not judged. Pure: the runner that switches arms and measures each
 * block is not part of this module.
 */
import { mannWhitneyU } from './stats.ts';
import { seededRandom } from './random.ts';

/** A: the baseline; B: the candidate (the change under test). */
export type Arm = 'A' | 'B';

/**
 * The order inside each pair. `alternate`: A then B, every pair (A/B/A/B…). `counterbalanced`: AB, BA,
 * AB, … (a linear drift cancels over two pairs). `randomized`: AB or BA drawn per pair from the seed
 * (randomized multiple interleaved trials), so no periodic disturbance can line up with one arm.
 */
export type BlockOrder = 'alternate' | 'counterbalanced' | 'randomized';

/** The significance level of the gate: Pinpoint's (catapult `pinpoint/models/compare/thresholds.py`). */
export const DEFAULT_ALPHA = 0.01;

/** Inputs of {@link planBlocks}. */
export interface BlockPlanInput {
  /** Judged A/B pairs (blocks per arm). Enough that a clear difference can reach p < alpha. */
  pairs: number;
  /** Seconds each block measures. */
  blockS: number;
  /** Pairs run first and not judged (caches, JIT, connection pools). @default 1 */
  warmupPairs?: number;
  /** Seconds between two blocks, to switch arms and let queues drain. @default 0 */
  gapS?: number;
  /** @default 'randomized' */
  order?: BlockOrder;
  /** Seed of the randomized order. @default 1 */
  seed?: number;
  /** The significance level the judged blocks must be able to reach. @default DEFAULT_ALPHA */
  alpha?: number;
}

/** One block of the schedule. */
export interface Block {
  /** Position in the schedule, from 0 (warm-up blocks included). */
  index: number;
  /** Pair number, from 0 (warm-up pairs included). */
  pair: number;
  arm: Arm;
  /** Run but not judged. */
  warmup: boolean;
  /** Offset from the start of the run, and length, in seconds. */
  startS: number;
  durationS: number;
}

/** What {@link planBlocks} returns: the blocks and the settings they were built with. */
export interface BlockPlan {
  blocks: Block[];
  pairs: number;
  warmupPairs: number;
  order: BlockOrder;
  seed: number;
  alpha: number;
  blockS: number;
  gapS: number;
  /** Seconds from the first block's start to the last block's end. */
  totalS: number;
  /** The smallest two-sided p that `pairs` blocks per arm can give (every B above every A). */
  minP: number;
}

/**
 * The smallest two-sided Mann–Whitney p-value `n1` and `n2` blocks can give: every B above every A,
 * no ties. Below `alpha`, the test can never flag anything.
 */
export function minAchievableP(n1: number, n2: number): number {
  const a = Array.from({ length: n1 }, (_, i) => i);
  const b = Array.from({ length: n2 }, (_, i) => n1 + i);
  return mannWhitneyU(a, b).p;
}

/** The fewest pairs whose smallest p is below `alpha` (searching up to 1,000). */
export function minPairsFor(alpha: number): number {
  for (let n = 2; n <= 1000; n++) if (minAchievableP(n, n) < alpha) return n;
  throw new Error(`alpha: ${alpha} cannot be reached with up to 1,000 pairs`);
}

function integer(v: number, min: number, field: string): number {
  if (!Number.isInteger(v) || v < min)
    throw new Error(`${field}: ${v} must be an integer of at least ${min}`);
  return v;
}

/** The interleaved schedule. Throws naming the field when a value makes no usable run. */
export function planBlocks(input: BlockPlanInput): BlockPlan {
  const pairs = integer(input.pairs, 2, 'pairs');
  const warmupPairs = integer(input.warmupPairs ?? 1, 0, 'warmupPairs');
  const seed = integer(input.seed ?? 1, 0, 'seed');
  const order = input.order ?? 'randomized';
  const alpha = input.alpha ?? DEFAULT_ALPHA;
  const gapS = input.gapS ?? 0;
  if (!(Number.isFinite(input.blockS) && input.blockS > 0))
    throw new Error(`blockS: ${input.blockS} must be a number of seconds above zero`);
  if (!(Number.isFinite(gapS) && gapS >= 0))
    throw new Error(`gapS: ${gapS} must be a number of seconds, zero or more`);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha: ${alpha} must be between 0 and 1`);
  if (!(['alternate', 'counterbalanced', 'randomized'] as const).includes(order))
    throw new Error(
      `order: '${String(order)}' is not one of alternate, counterbalanced, randomized`,
    );
  const minP = minAchievableP(pairs, pairs);
  if (!(minP < alpha))
    throw new Error(
      `pairs: ${pairs} pairs can never reach p < ${alpha} (the smallest p with ${pairs} blocks per arm is ${minP.toPrecision(3)}); use at least ${minPairsFor(alpha)}`,
    );

  const random = seededRandom(seed);
  const blocks: Block[] = [];
  let t = 0;
  for (let pair = 0; pair < warmupPairs + pairs; pair++) {
    const bFirst =
      order === 'alternate' ? false : order === 'counterbalanced' ? pair % 2 === 1 : random() < 0.5;
    for (const arm of bFirst ? (['B', 'A'] as const) : (['A', 'B'] as const)) {
      if (blocks.length > 0) t += gapS;
      blocks.push({
        index: blocks.length,
        pair,
        arm,
        warmup: pair < warmupPairs,
        startS: t,
        durationS: input.blockS,
      });
      t += input.blockS;
    }
  }
  return {
    blocks,
    pairs,
    warmupPairs,
    order,
    seed,
    alpha,
    blockS: input.blockS,
    gapS,
    totalS: t,
    minP,
  };
}

/** Inputs of {@link planRounds}: more than two arms, each round loading every arm once. */
export interface RoundPlanInput {
  /** The arms, by name (the first is usually the baseline). At least two, each named once. */
  arms: readonly string[];
  /** Judged rounds (blocks per arm). */
  rounds: number;
  /** Rounds run first and not judged. @default 1 */
  warmupRounds?: number;
  /** Seconds each block measures. */
  blockS: number;
  /** Seconds between two blocks. @default 0 */
  gapS?: number;
  /** Seed of the order of the arms inside each round (a fresh permutation per round). @default 1 */
  seed?: number;
  /** @default DEFAULT_ALPHA */
  alpha?: number;
}

/** One block of a multi-arm schedule. */
export interface RoundBlock {
  index: number;
  round: number;
  arm: string;
  warmup: boolean;
  startS: number;
  durationS: number;
}

/** What {@link planRounds} returns. */
export interface RoundPlan {
  arms: string[];
  blocks: RoundBlock[];
  rounds: number;
  warmupRounds: number;
  seed: number;
  alpha: number;
  blockS: number;
  gapS: number;
  totalS: number;
  minP: number;
}

/**
 * The schedule of a run that judges several candidates against one baseline at once (A against A′,
 * against B₁, B₂, …): every round loads each arm for one block, in a seeded random order drawn
 * afresh per round, so each pair of arms is interleaved as {@link planBlocks}' `randomized` order
 * interleaves A and B. One run then serves every comparison, which costs less machine time than one
 * two-arm run per comparison and keeps the baseline's blocks common to all of them.
 */
export function planRounds(input: RoundPlanInput): RoundPlan {
  const rounds = integer(input.rounds, 2, 'rounds');
  const warmupRounds = integer(input.warmupRounds ?? 1, 0, 'warmupRounds');
  const seed = integer(input.seed ?? 1, 0, 'seed');
  const alpha = input.alpha ?? DEFAULT_ALPHA;
  const gapS = input.gapS ?? 0;
  if (input.arms.length < 2) throw new Error('arms: name at least two arms');
  input.arms.forEach((a, i) => {
    if (a === '') throw new Error(`arms[${i}]: must not be empty`);
    if (input.arms.indexOf(a) !== i) throw new Error(`arms[${i}]: '${a}' is named twice`);
  });
  if (!(Number.isFinite(input.blockS) && input.blockS > 0))
    throw new Error(`blockS: ${input.blockS} must be a number of seconds above zero`);
  if (!(Number.isFinite(gapS) && gapS >= 0))
    throw new Error(`gapS: ${gapS} must be a number of seconds, zero or more`);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha: ${alpha} must be between 0 and 1`);
  const minP = minAchievableP(rounds, rounds);
  if (!(minP < alpha))
    throw new Error(
      `rounds: ${rounds} rounds can never reach p < ${alpha} (the smallest p with ${rounds} blocks per arm is ${minP.toPrecision(3)}); use at least ${minPairsFor(alpha)}`,
    );
  const random = seededRandom(seed);
  const blocks: RoundBlock[] = [];
  let t = 0;
  for (let round = 0; round < warmupRounds + rounds; round++) {
    const order = [...input.arms];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as string, order[i] as string];
    }
    for (const arm of order) {
      if (blocks.length > 0) t += gapS;
      blocks.push({
        index: blocks.length,
        round,
        arm,
        warmup: round < warmupRounds,
        startS: t,
        durationS: input.blockS,
      });
      t += input.blockS;
    }
  }
  return {
    arms: [...input.arms],
    blocks,
    rounds,
    warmupRounds,
    seed,
    alpha,
    blockS: input.blockS,
    gapS,
    totalS: t,
    minP,
  };
}

/**
 * One comparison of a multi-arm run as the two-arm plan {@link judgeBlocks} judges: the blocks of
 * `baseline` become A and those of `candidate` B, each round a pair; block indices are kept.
 */
export function comparisonPlan(p: RoundPlan, baseline: string, candidate: string): BlockPlan {
  for (const [field, arm] of [
    ['baseline', baseline],
    ['candidate', candidate],
  ] as const)
    if (!p.arms.includes(arm)) throw new Error(`${field}: no arm '${arm}' in the plan`);
  if (baseline === candidate) throw new Error(`candidate: '${candidate}' is the baseline itself`);
  const blocks: Block[] = p.blocks
    .filter((b) => b.arm === baseline || b.arm === candidate)
    .map((b) => ({
      index: b.index,
      pair: b.round,
      arm: b.arm === baseline ? 'A' : 'B',
      warmup: b.warmup,
      startS: b.startS,
      durationS: b.durationS,
    }));
  return {
    blocks,
    pairs: p.rounds,
    warmupPairs: p.warmupRounds,
    order: 'randomized',
    seed: p.seed,
    alpha: p.alpha,
    blockS: p.blockS,
    gapS: p.gapS,
    totalS: p.totalS,
    minP: p.minP,
  };
}
