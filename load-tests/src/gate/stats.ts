/**
 * The statistics of the regression gate, in plain TypeScript: the Mann–Whitney U test (exact
 * distribution for small samples without ties; the normal approximation with tie and continuity
 * corrections otherwise), the Hodges–Lehmann shift, Cliff's delta and the median. The test follows
 * scipy.stats.mannwhitneyu (1.17) so its p-values can be checked against scipy's: `U` is the statistic
 * of the first sample, and `auto` picks the exact distribution when either sample has at most 8
 * values and there are no ties.
 * https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.mannwhitneyu.html
 */

/** Which difference the test looks for: any, or the first sample stochastically greater / less. */
export type Alternative = 'two-sided' | 'greater' | 'less';

/** How the p-value is computed; `auto` as scipy: exact when min(n1, n2) ≤ 8 and no ties. */
export type MwuMethod = 'auto' | 'exact' | 'asymptotic';

/** Options of {@link mannWhitneyU}. */
export interface MwuOptions {
  /** @default 'two-sided' */
  alternative?: Alternative;
  /** @default 'auto' */
  method?: MwuMethod;
  /** Subtract ½ from |U − mean| in the normal approximation (no effect on `exact`). @default true */
  continuity?: boolean;
}

/** The outcome of {@link mannWhitneyU}. */
export interface MwuResult {
  /** U of the first sample: pairs (a, b) with a > b, ties counted ½. */
  u: number;
  /** U of the second sample (`n1·n2 − u`). */
  uOther: number;
  p: number;
  /** The method actually used (`auto` resolved). */
  method: 'exact' | 'asymptotic';
  /** The standardized statistic of the normal approximation (asymptotic only). */
  z?: number;
  /** Whether any two values of the pooled samples are equal. */
  ties: boolean;
}

function checkSample(xs: readonly number[], name: string): void {
  if (xs.length === 0) throw new Error(`${name}: the sample is empty`);
  const i = xs.findIndex((x) => !Number.isFinite(x));
  if (i >= 0) throw new Error(`${name}[${i}]: ${xs[i]} is not a finite number`);
}

/** The median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  checkSample(xs, 'median');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Ranks 1..n of the values, ties given the mean of their ranks, and the size of each tie group. */
export function rankWithTies(xs: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length).fill(0);
  const tieSizes: number[] = [];
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && order[end]?.[0] === order[start]?.[0]) end++;
    // Positions start..end-1 hold ranks start+1..end: their mean.
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]?.[1] as number] = rank;
    tieSizes.push(end - start);
    start = end;
  }
  return { ranks, tieSizes };
}

/**
 * erfc(x) to about 1e-14 relative: the positive series of erf (no cancellation within it) below 1.5,
 * where erfc ≥ 0.03 so `1 − erf` loses little; the continued fraction of erfc (modified Lentz) from
 * 1.5 on, where it converges in under a hundred steps.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 1.5) {
    // erf(x) = 2/√π · e^{−x²} · Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3·…·(2n+1))
    let term = x;
    let sum = x;
    for (let n = 0; n < 200 && term > sum * 1e-17; n++) {
      term *= (2 * x * x) / (2 * n + 3);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** P(Z ≥ z) for a standard normal Z. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * The exact null distribution of U for samples of n1 and n2 distinct values: `counts[u]` is the
 * number of the C(n1+n2, n1) orderings with that U. Built by placing values one at a time: an
 * x placed after j y's adds j to U.
 */
export function exactUCounts(n1: number, n2: number): number[] {
  const max = n1 * n2;
  // row[j] = counts for i x's and j y's placed; start with i = 0 (only U = 0).
  let row: number[][] = Array.from({ length: n2 + 1 }, () => {
    const a = new Array<number>(max + 1).fill(0);
    a[0] = 1;
    return a;
  });
  for (let i = 1; i <= n1; i++) {
    const next: number[][] = [];
    for (let j = 0; j <= n2; j++) {
      const a = new Array<number>(max + 1).fill(0);
      const lastIsX = row[j] as number[];
      for (let u = j; u <= max; u++) a[u] = lastIsX[u - j] as number;
      if (j > 0) {
        const lastIsY = next[j - 1] as number[];
        for (let u = 0; u <= max; u++) a[u] = (a[u] as number) + (lastIsY[u] as number);
      }
      next.push(a);
    }
    row = next;
  }
  return row[n2] as number[];
}

/** P(U ≥ u) under the exact null distribution. */
function exactSf(u: number, n1: number, n2: number): number {
  const counts = exactUCounts(n1, n2);
  const total = counts.reduce((s, c) => s + c, 0);
  let tail = 0;
  for (let k = Math.ceil(u); k < counts.length; k++) tail += counts[k] as number;
  return tail / total;
}

/**
 * The Mann–Whitney U test of samples `a` and `b` (as scipy.stats.mannwhitneyu(a, b, ...)): `greater`
 * tests whether `a` tends to be larger than `b`. All values tied gives p = 1 (no evidence either way).
 * Throws on an empty sample or a value that is not finite, naming it.
 */
export function mannWhitneyU(
  a: readonly number[],
  b: readonly number[],
  o: MwuOptions = {},
): MwuResult {
  checkSample(a, 'a');
  checkSample(b, 'b');
  const alternative = o.alternative ?? 'two-sided';
  const n1 = a.length;
  const n2 = b.length;
  const { ranks, tieSizes } = rankWithTies([...a, ...b]);
  const ties = tieSizes.some((t) => t > 1);
  const r1 = ranks.slice(0, n1).reduce((s, r) => s + r, 0);
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  // The statistic whose upper tail is the p-value (scipy: greater → U1, less → U2, two-sided → max, ×2).
  const u = alternative === 'greater' ? u1 : alternative === 'less' ? u2 : Math.max(u1, u2);
  const factor = alternative === 'two-sided' ? 2 : 1;
  const requested = o.method ?? 'auto';
  const method =
    requested === 'auto' ? ((n1 > 8 && n2 > 8) || ties ? 'asymptotic' : 'exact') : requested;
  if (method === 'exact') {
    if (ties)
      throw new Error(
        "mannWhitneyU: the exact distribution assumes no ties; use method 'asymptotic' (or 'auto')",
      );
    return { u: u1, uOther: u2, p: Math.min(1, factor * exactSf(u, n1, n2)), method, ties };
  }
  const n = n1 + n2;
  const tieTerm = tieSizes.reduce((s, t) => s + t ** 3 - t, 0);
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (!(sd > 0)) return { u: u1, uOther: u2, p: 1, method, ties };
  const z = (u - (n1 * n2) / 2 - (o.continuity === false ? 0 : 0.5)) / sd;
  return { u: u1, uOther: u2, p: Math.min(1, factor * normalSf(z)), method, z, ties };
}

/** The Hodges–Lehmann shift of `b` against `a`: the median of every difference b_j − a_i. */
export function hodgesLehmann(a: readonly number[], b: readonly number[]): number {
  checkSample(a, 'a');
  checkSample(b, 'b');
  return median(b.flatMap((y) => a.map((x) => y - x)));
}

/**
 * Cliff's delta of `b` against `a`: (#(b > a) − #(b < a)) / (n1·n2) over all pairs, from −1 (every b
 * below every a) to 1 (every b above).
 */
export function cliffsDelta(a: readonly number[], b: readonly number[]): number {
  checkSample(a, 'a');
  checkSample(b, 'b');
  let more = 0;
  let less = 0;
  for (const y of b)
    for (const x of a) {
      if (y > x) more++;
      else if (y < x) less++;
    }
  return (more - less) / (a.length * b.length);
}
