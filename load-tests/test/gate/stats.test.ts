/** The gate's statistics against scipy's (see scipy-reference.ts for how those were computed). */
import { describe, expect, it } from 'vitest';
import {
  cliffsDelta,
  erfc,
  exactUCounts,
  hodgesLehmann,
  mannWhitneyU,
  median,
  normalSf,
  rankWithTies,
  type Alternative,
  type MwuMethod,
} from '../../src/gate/stats.ts';
import { scipyCases, scipyNormSf } from './scipy-reference.ts';

/** |actual − expected| within `rel` of expected (p-values span 1e-198..1). */
function expectRelClose(actual: number, expected: number, rel: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
    rel * Math.abs(expected) + 1e-300,
  );
}

describe('mannWhitneyU against scipy.stats.mannwhitneyu', () => {
  const rows = Object.entries(scipyCases).flatMap(([name, c]) =>
    Object.entries(c.p).map(([key, [u, p]]) => ({ name, key, a: c.a, b: c.b, u, p })),
  );

  it(`covers exact and asymptotic, every alternative, with and without ties (${rows.length} rows)`, () => {
    expect(rows.length).toBeGreaterThanOrEqual(80);
    expect(new Set(rows.map((r) => r.key.split('/')[1]))).toEqual(
      new Set(['auto', 'exact', 'asymptotic', 'asymptotic-nocc']),
    );
  });

  it.each(rows.map((r) => [`${r.name} ${r.key}`, r] as const))('%s', (_label, r) => {
    const [alternative, m] = r.key.split('/') as [Alternative, string];
    const method: MwuMethod = m === 'asymptotic-nocc' ? 'asymptotic' : (m as MwuMethod);
    const res = mannWhitneyU(r.a, r.b, {
      alternative,
      method,
      ...(m === 'asymptotic-nocc' ? { continuity: false } : {}),
    });
    expect(res.u).toBe(r.u);
    expect(res.uOther).toBe(r.a.length * r.b.length - r.u);
    expectRelClose(res.p, r.p, 1e-9, `${r.name} ${r.key}`);
  });

  it('auto picks exact only without ties and with a sample of at most 8, as scipy', () => {
    const s = scipyCases;
    const method = (c: keyof typeof s) => {
      const x = s[c];
      if (!x) throw new Error(String(c));
      return mannWhitneyU(x.a, x.b).method;
    };
    expect(method('shier')).toBe('exact');
    expect(method('separated8')).toBe('exact');
    expect(method('unbalanced')).toBe('exact'); // 3 vs 30
    expect(method('separated10')).toBe('asymptotic');
    expect(method('ties')).toBe('asymptotic');
  });

  it('all values tied: p = 1 (scipy gives 1 with continuity, NaN without; the gate says 1)', () => {
    const t = scipyCases['tied'];
    if (!t) throw new Error('tied');
    expect(mannWhitneyU(t.a, t.b, { continuity: false }).p).toBe(1);
  });

  it('refuses the exact method with ties, an empty sample and a value that is not finite', () => {
    expect(() => mannWhitneyU([1, 2, 2], [3, 4], { method: 'exact' })).toThrow(
      'the exact distribution assumes no ties',
    );
    expect(() => mannWhitneyU([], [1])).toThrow('a: the sample is empty');
    expect(() => mannWhitneyU([1], [2, Number.NaN])).toThrow('b[1]: NaN is not a finite number');
  });
});

describe('effect sizes against numpy', () => {
  it.each(Object.entries(scipyCases))('%s: Hodges–Lehmann shift and Cliff’s delta', (_n, c) => {
    expect(hodgesLehmann(c.a, c.b)).toBeCloseTo(c.hl, 12);
    expect(cliffsDelta(c.a, c.b)).toBeCloseTo(c.cliff, 12);
  });

  it('Cliff’s delta is 2·U(b)/(n1·n2) − 1', () => {
    for (const c of Object.values(scipyCases)) {
      const r = mannWhitneyU(c.a, c.b);
      expect(cliffsDelta(c.a, c.b)).toBeCloseTo((2 * r.uOther) / (c.a.length * c.b.length) - 1, 12);
    }
  });
});

describe('building blocks', () => {
  it('normalSf matches scipy.stats.norm.sf from −3 to 30 (p down to 1e-198)', () => {
    for (const [z, p] of scipyNormSf) expectRelClose(normalSf(z), p, 1e-12, `sf(${z})`);
  });

  it('erfc is continuous where the method changes (x = 1.5) and odd-symmetric', () => {
    expectRelClose(erfc(1.5 - 1e-12), erfc(1.5), 1e-10, 'erfc near 1.5');
    expect(erfc(-1.3) + erfc(1.3)).toBeCloseTo(2, 15);
    expect(erfc(0)).toBe(1);
    expect(Number.isNaN(erfc(Number.NaN))).toBe(true);
  });

  it('the exact null distribution counts every ordering once and is symmetric', () => {
    const counts = exactUCounts(4, 6);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(210); // C(10, 4)
    expect(counts).toEqual([...counts].reverse());
    expect(counts[0]).toBe(1);
    expect(exactUCounts(2, 2)).toEqual([1, 1, 2, 1, 1]);
  });

  it('ranks ties by their mean rank and reports the tie groups', () => {
    expect(rankWithTies([3, 1, 3, 2, 3])).toEqual({ ranks: [4, 1, 4, 2, 4], tieSizes: [1, 1, 3] });
  });

  it('median of odd and even counts, unsorted input untouched', () => {
    const xs = [5, 1, 4];
    expect(median(xs)).toBe(4);
    expect(xs).toEqual([5, 1, 4]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
