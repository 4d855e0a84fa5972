/** How the report writes figures: milliseconds, percentages, rates. */
/** Milliseconds with a precision that suits their size. */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  const a = Math.abs(v);
  return `${a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3)} ms`;
}

/** A ratio as a percentage with `digits` decimals. */
export function pct(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(digits)} %`;
}

/** An error rate as a percentage, two significant digits. */
export function rate(v: number | null): string {
  if (v === null) return 'n/a';
  return v === 0 ? '0 %' : `${(v * 100).toPrecision(2)} %`;
}

/** A figure with three significant digits, whole numbers from 100 up. */
export function round(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}
