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
