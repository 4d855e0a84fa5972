/**
 * The time side of the SLO rules (compile/slo.ts): the burn-rate tiers and their windows, and the
 * time scale a test stack may run them at (ADR 0025). Scaling divides every window and `for` by one
 * whole factor, so every ratio, burn factor and budget share stays what production computes, only
 * sooner; the shortest window must still span enough scrapes for rate() to see the burn.
 */

/** One alerting tier: page or ticket when both windows burn faster than `factor`. */
export interface BurnWindow {
  severity: 'page' | 'ticket';
  long: string;
  short: string;
  /** Burn-rate factor: error ratio / error budget. */
  factor: number;
  /** Share of a 30-day budget the long window spends at that rate. */
  budgetSpent: number;
}

/**
 * The Google SRE Workbook, "Alerting on SLOs", section 6 "Multiwindow, Multi-Burn-Rate Alerts",
 * table of recommended parameters for a 30-day SLO (https://sre.google/workbook/alerting-on-slos/):
 *   page   1h long, 5m short, burn rate 14.4 (2 % of the budget spent in the long window)
 *   page   6h long, 30m short, burn rate 6 (5 %)
 *   ticket 3d long, 6h short, burn rate 1 (10 %)
 * plus the 1d/2h ticket at 3 (10 %) that Sloth adds between the last two
 * (slok/sloth `WindowDefaults`): without it a 3x burn waits up to three days for its ticket.
 * The short window, 1/12 of the long one, ends the alert soon after the burn stops.
 */
export const burnWindows: readonly BurnWindow[] = [
  { severity: 'page', long: '1h', short: '5m', factor: 14.4, budgetSpent: 0.02 },
  { severity: 'page', long: '6h', short: '30m', factor: 6, budgetSpent: 0.05 },
  { severity: 'ticket', long: '1d', short: '2h', factor: 3, budgetSpent: 0.1 },
  { severity: 'ticket', long: '3d', short: '6h', factor: 1, budgetSpent: 0.1 },
];

/**
 * Test stacks only: every window and `for` of the rules divided by `factor`, so that a burn can fire
 * and clear within a test run (ADR 0025). Production and the local stack use 1 (no scaling).
 */
export interface SloTimeScale {
  /** A whole number that divides 300 (the 5m window, in seconds): 1, 2, 3, 4, 5, 6, 10, … 300. */
  factor: number;
  /** Prometheus's scrape and evaluation interval (`global.scrape_interval`), e.g. `2s`. */
  scrapeInterval: string;
  /**
   * How often the source refreshes its histograms, when it does so on a timer (Envoy's
   * `stats_flush_interval`, 5 s by default). The compiled sidecars set `stats_flush_on_admin`, so
   * each scrape sees fresh values. @default none
   */
  flushInterval?: string;
}

/** How long the rate must stay above `rps` before the load ticket. */
export const loadFor = '15m';

const unitSeconds: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * The seconds of a Prometheus duration: units largest first, each once (`500ms`, `2s`, `1h`,
 * `2h24m`, `3d`); NaN for anything else.
 */
export function durationSeconds(d: string): number {
  const order = ['d', 'h', 'm', 's', 'ms'];
  let last = -1;
  let total = 0;
  if (d === '') return Number.NaN;
  for (const part of d.split(/(?<=[a-z])(?=\d)/)) {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(part);
    const unit = m?.[2];
    if (m?.[1] === undefined || unit === undefined || order.indexOf(unit) <= last)
      return Number.NaN;
    last = order.indexOf(unit);
    total += Number(m[1]) * (unitSeconds[unit] ?? Number.NaN);
  }
  return total;
}

/** Whole seconds as a Prometheus duration, largest units first: 300 → `5m`, 8640 → `2h24m`. */
export function formatDuration(seconds: number): string {
  let rest = seconds;
  let out = '';
  for (const [u, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const q = Math.floor(rest / n);
    if (q > 0) out += `${q}${u}`;
    rest -= q * n;
  }
  return out || '0s';
}

/** Every window a tier reads, each once, shortest first. */
export function sloWindows(): string[] {
  const all = new Set(burnWindows.flatMap((w) => [w.short, w.long]));
  return [...all].sort((a, b) => durationSeconds(a) - durationSeconds(b));
}

/**
 * The fewest scrape intervals the shortest window may span: rate() needs two samples in its
 * window, and four (the usual rule of thumb) leave room for a late or missed scrape.
 */
export const sloMinSamplesPerWindow = 4;

/** What a time scale must divide: every window and the load ticket's `for`. */
function scaledDurations(): string[] {
  return [...sloWindows(), loadFor];
}

/**
 * Why `t` cannot scale the rules, or undefined when it can: the factor must be a whole number that
 * divides every window (and `for`) into whole seconds, and the shortest scaled window must still
 * span {@link sloMinSamplesPerWindow} scrape (or source flush) intervals. The message names no
 * field: the caller prefixes its own (`trellis-local:sloTimeScale`, `timeScale.factor`).
 */
export function sloTimeScaleProblem(t: SloTimeScale): string | undefined {
  const { factor } = t;
  if (!Number.isInteger(factor) || factor < 1)
    return `${factor} must be a whole number, 1 or more (1: no scaling)`;
  const uneven = scaledDurations().filter((d) => durationSeconds(d) % factor !== 0);
  if (uneven.length > 0)
    return `${factor} does not divide ${uneven.join(', ')} into whole seconds: use a divisor of 300 (e.g. 10, 15, 20, 30, 60)`;
  const scrape = durationSeconds(t.scrapeInterval);
  if (!(scrape > 0)) return `scrape interval '${t.scrapeInterval}' is not a duration such as 2s`;
  const flush = t.flushInterval === undefined ? 0 : durationSeconds(t.flushInterval);
  if (!(flush >= 0)) return `flush interval '${t.flushInterval}' is not a duration such as 5s`;
  const step = Math.max(scrape, flush);
  const what =
    flush > scrape ? `the source's ${t.flushInterval} flush` : `a ${t.scrapeInterval} scrape`;
  const more = flush > scrape ? 'flush the source more often' : 'scrape more often';
  const [first] = sloWindows();
  const shortest = durationSeconds(first ?? '5m');
  if (shortest / factor < sloMinSamplesPerWindow * step) {
    const fits = [...Array(shortest).keys()]
      .map((i) => i + 1)
      .filter((f) => shortest % f === 0 && shortest / f >= sloMinSamplesPerWindow * step);
    return (
      `${factor} shrinks the ${first} window to ${formatDuration(shortest / factor)}, under ` +
      `${sloMinSamplesPerWindow} intervals of ${what} (${formatDuration(sloMinSamplesPerWindow * step)}): ` +
      (fits.length > 0 ? `use at most ${Math.max(...fits)}, or ${more}` : more)
    );
  }
  return undefined;
}

/** The tiers with every window divided by `factor` (the tiers themselves for 1). */
export function scaledBurnWindows(factor = 1): BurnWindow[] {
  const scale = (d: string) => formatDuration(durationSeconds(d) / factor);
  return burnWindows.map((w) =>
    factor === 1 ? w : { ...w, long: scale(w.long), short: scale(w.short) },
  );
}

/** How the rules read time: the scale factor and each window as written in the rules. */
export interface Timing {
  factor: number;
  /** A window or `for` of the unscaled rules as the scaled rules write it (`1h` → `2m` at 30). */
  at(d: string): string;
}

const unscaled: Timing = { factor: 1, at: (d) => d };

export function timing(t: SloTimeScale | undefined): Timing {
  if (t === undefined || t.factor === 1) return unscaled;
  const problem = sloTimeScaleProblem(t);
  if (problem !== undefined) throw new Error(`compileSloRules: timeScale.factor: ${problem}`);
  return { factor: t.factor, at: (d) => formatDuration(durationSeconds(d) / t.factor) };
}

/** The label every alert of scaled rules carries, so that none passes for a production alert. */
export const timeScaleLabel = 'time_scale';
