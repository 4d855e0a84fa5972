/**
 * The scenarios of `./trellis load`: their shape (how the rate moves), their mix (how requests split
 * between writes and reads) and their defaults, all in one place.
 */
import { scenarioNames, type ScenarioName } from './plan-types.ts';

/** How requests split between the route kinds. `model` splits in proportion to the budgets' rps. */
export type Mix = 'model' | { write: number; read: number };

/** A scenario's defaults; every one can be overridden from the command line. */
export interface ScenarioDefaults {
  /** Total request rate (requests per second) across the routes. For `spike`, the base rate. */
  rps: number;
  /** Measured duration (seconds). For `spike`, the whole ramp. */
  durationS: number;
  /** Warm-up at the measured rate before measuring (seconds). */
  warmupS: number;
  mix: Mix;
  /** Mesh probe iterations per second (each sends one request through every path). */
  meshRate: number;
  /** `constant`: a constant arrival rate. `spike`: base, ramp to 3× and hold, ramp back, base. */
  shape: 'constant' | 'spike';
  /** Wait this long before abortOnFail may stop the run (seconds after measuring starts). */
  abortDelayS: number;
  summary: string;
}

/** The defaults per scenario. `steady` is the budget run: 500 rps for two minutes. */
export const scenarioDefaults: Record<ScenarioName, ScenarioDefaults> = {
  smoke: {
    rps: 20,
    durationS: 30,
    warmupS: 5,
    mix: 'model',
    meshRate: 4,
    shape: 'constant',
    abortDelayS: 10,
    summary: 'the CI gate: 30 s at a low rate, every route and every mesh path',
  },
  steady: {
    rps: 500,
    durationS: 120,
    warmupS: 20,
    mix: 'model',
    meshRate: 20,
    shape: 'constant',
    abortDelayS: 15,
    summary: 'constant arrival rate (default 500 rps for 2 min), split as the budgets',
  },
  spike: {
    rps: 200,
    durationS: 100,
    warmupS: 15,
    mix: 'model',
    meshRate: 10,
    shape: 'spike',
    abortDelayS: 15,
    summary: 'base rate, ramp to 3× and hold, back to base (default base 200 rps)',
  },
  'read-heavy': {
    rps: 500,
    durationS: 120,
    warmupS: 20,
    mix: { write: 0.05, read: 0.95 },
    meshRate: 20,
    shape: 'constant',
    abortDelayS: 15,
    summary: '95 % reads, 5 % writes',
  },
  'write-heavy': {
    rps: 500,
    durationS: 120,
    warmupS: 20,
    mix: { write: 0.9, read: 0.1 },
    meshRate: 20,
    shape: 'constant',
    abortDelayS: 15,
    summary: '90 % writes, 10 % reads',
  },
};

/** The spike's multiplier over the base rate. */
export const SPIKE_FACTOR = 3;

/** Parse a scenario name, or throw naming the accepted ones. */
export function parseScenario(v: string): ScenarioName {
  if ((scenarioNames as readonly string[]).includes(v)) return v as ScenarioName;
  throw new Error(`--scenario: '${v}' is not one of ${scenarioNames.join(', ')}`);
}

/**
 * Parse a k6-style duration (`30s`, `2m`, `1m30s`, `500ms`, `1h`) into seconds. A bare number means
 * seconds. Throws naming `what` on anything else.
 */
export function parseDuration(v: string, what = 'duration'): number {
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return positive(Number(s), what, v);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
    end = re.lastIndex;
  }
  if (end === 0 || end !== s.length)
    throw new Error(`${what}: '${v}' is not a duration like 30s, 2m or 1m30s`);
  return positive(total, what, v);
}

function positive(n: number, what: string, raw: string): number {
  if (!(n > 0)) throw new Error(`${what}: '${raw}' must be more than zero`);
  return n;
}

/** Seconds as a k6 duration string (`90s`, `1500ms`). */
export function k6Duration(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
