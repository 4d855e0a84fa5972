/**
 * The pure part of `pod-overhead.ts`: what one block of the pod-overhead bench measured, turned into
 * the figures the gate's statistics judge, and the verdict against the limit ("pods may not
 * add more than 10 % to an Envoy traversal"). No I/O; unit-tested in
 * load-tests/test/pod-overhead-figures.test.ts.
 */
import { cpuMsPerRequest } from '../src/gate/samples.ts';
import { median } from '../src/gate/stats.ts';

/** What one probe process measured in one block (ms per request; see PROBE in pod-overhead.ts). */
export interface ProbeBlock {
  /** GET through the sidecar's inbound mTLS listener, per answered request (200 only). */
  sidecar: number[];
  /** GET straight to the app, per answered request (empty for a probe that only goes through the sidecar). */
  direct: number[];
  /** sidecar − direct per iteration where both answered 200, the two sent back to back. */
  diffs: number[];
  /** Requests sent through the sidecar, and to the app; answered or not. */
  sidecarRequests: number;
  directRequests: number;
  /** Requests that did not answer 200. */
  failures: number;
}

/** One block's measurements of one arm. */
export interface BlockMeasurement {
  /** The probe in the sidecar's own network namespace (sidecar and direct, paired per iteration). */
  local: ProbeBlock;
  /** The probe in the client's place: host loopback (no pod) or another pod across the bridge. */
  cross: ProbeBlock;
  /** Cumulative CPU ms of the arm's Envoy and app, before and after the block. */
  cpuBefore: { envoy: number; app: number };
  cpuAfter: { envoy: number; app: number };
}

/** The figures of one block, keyed as the gate's metrics are. */
export interface BlockFigures {
  /** Envoy traversal seen from the sidecar's namespace: median of per-iteration (sidecar − direct). */
  'traversal:local': number;
  /** The client's path through the sidecar minus the direct app hop: median(cross) − median(direct). */
  'traversal:cross': number;
  /** Envoy's CPU time over the block per request it served. */
  'cpu:envoy': number;
  /** The app's CPU time over the block per request it served (sidecar and direct). */
  'cpu:app': number;
  /** Reported only: the medians themselves, ms. */
  'median:sidecar': number;
  'median:direct': number;
  'median:cross': number;
}

/** The metric figures of a block; throws naming the probe when one of them answered nothing. */
export function blockFigures(m: BlockMeasurement): BlockFigures {
  if (m.local.diffs.length === 0) throw new Error('local.diffs: no paired request answered');
  if (m.local.direct.length === 0) throw new Error('local.direct: no direct request answered');
  if (m.cross.sidecar.length === 0) throw new Error('cross.sidecar: no request answered');
  const envoyRequests = m.local.sidecarRequests + m.cross.sidecarRequests;
  const appRequests = envoyRequests + m.local.directRequests + m.cross.directRequests;
  const envoy = cpuMsPerRequest(
    { envoy: m.cpuBefore.envoy },
    { envoy: m.cpuAfter.envoy },
    envoyRequests,
  );
  const app = cpuMsPerRequest({ app: m.cpuBefore.app }, { app: m.cpuAfter.app }, appRequests);
  const direct = median(m.local.direct);
  const cross = median(m.cross.sidecar);
  return {
    'traversal:local': median(m.local.diffs),
    'traversal:cross': cross - direct,
    'cpu:envoy': envoy.envoy as number,
    'cpu:app': app.app as number,
    'median:sidecar': median(m.local.sidecar),
    'median:direct': direct,
    'median:cross': cross,
  };
}

/**
 * The distribution-free confidence interval of the Hodges–Lehmann shift of `b` against `a` (Moses;
 * Hollander & Wolfe, Nonparametric Statistical Methods, 3rd ed., §4.3): the C-th smallest and C-th
 * largest of the n·m differences b − a, with C from the normal approximation of the Mann–Whitney
 * distribution, C = floor(nm/2 − z·sqrt(nm(n+m+1)/12)), at least 1. z = 1.96 is 95 %.
 */
export function shiftInterval(
  a: readonly number[],
  b: readonly number[],
  z = 1.959964,
): { low: number; high: number } {
  if (a.length === 0 || b.length === 0) throw new Error('shiftInterval: a sample is empty');
  const d: number[] = [];
  for (const y of b) for (const x of a) d.push(y - x);
  d.sort((p, q) => p - q);
  const nm = d.length;
  const c = Math.max(1, Math.floor(nm / 2 - z * Math.sqrt((nm * (a.length + b.length + 1)) / 12)));
  return { low: d[c - 1] as number, high: d[nm - c] as number };
}

/** Where a shift's interval stands against a limit given as a fraction of A's median. */
export type LimitVerdict = 'within' | 'over' | 'not settled';

/**
 * `within` when the whole interval lies below `limit × medianA` (the added cost is shown to be less
 * than the limit), `over` when it lies wholly above, else `not settled`.
 */
export function limitVerdict(
  interval: { low: number; high: number },
  medianA: number,
  limit: number,
): LimitVerdict {
  if (!(medianA > 0)) throw new Error(`medianA: ${medianA} must be above zero to judge a ratio`);
  const bound = limit * medianA;
  if (interval.high < bound) return 'within';
  if (interval.low > bound) return 'over';
  return 'not settled';
}
