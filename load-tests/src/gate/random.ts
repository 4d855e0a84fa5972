/**
 * A small seeded pseudo-random generator (mulberry32), so a block schedule and a test's noise are the
 * same on every run with the same seed. Not for anything secret.
 */

/** A function returning uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32 seeded with a 32-bit integer (other numbers are truncated to one). */
export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
