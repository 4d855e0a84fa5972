/**
 * The k6 thresholds of a run, from the model's budgets as `compileK6Thresholds` compiles them (as
 * data), and their rendering in k6's syntax, which happens here and nowhere else:
 * - each budget threshold is narrowed to the measured phase (`phase:measure`, so the warm-up never
 *   counts) and stops the run early when broken (`abortOnFail`, after `delayAbortEval`);
 * - the mesh budget applies to each Envoy traversal separately (`hop:<name>`);
 * - the run-wide error rate stays below 0.1 % (failed requests, and failed checks);
 * - connections are reused: p99 of `http_req_connecting` and `http_req_tls_handshaking` is 0.
 * Threshold syntax (tag filters `metric{tag:value,...}`, aggregation expressions, abortOnFail,
 * delayAbortEval): https://grafana.com/docs/k6/latest/using-k6/thresholds/
 */
import type { K6Statistic, K6Threshold, K6Thresholds } from '@trellis/policy';
import type { ObjectThreshold } from 'k6/options';

/** Run-wide error-rate ceiling (0.1 %). */
export const MAX_ERROR_RATE = 0.001;

/** The metric and tag filter of a threshold: one k6 (sub-)metric. */
export type ThresholdKey = Pick<K6Threshold, 'metric' | 'tags'>;

/** k6's key for a metric and tag filter: `metric{tag:value,...}`; tags keep their insertion order. */
export function thresholdKey(k: ThresholdKey): string {
  const tags = Object.entries(k.tags).map(([t, v]) => `${t}:${v}`);
  return tags.length > 0 ? `${k.metric}{${tags.join(',')}}` : k.metric;
}

function statistic(s: K6Statistic): string {
  return typeof s === 'string' ? s : `p(${s.percentile})`;
}

/** k6's expression of a threshold, e.g. `p(99)<=10`. */
export function thresholdExpr(t: K6Threshold): string {
  return `${statistic(t.statistic)}${t.comparison}${t.value}`;
}

/**
 * `options.thresholds` for k6: one key per metric and tag filter, in first-seen order; a threshold
 * without `abortOnFail` is a plain expression, one with it an object.
 */
export function renderThresholds(
  list: readonly K6Threshold[],
): Record<string, (string | ObjectThreshold)[]> {
  const out: Record<string, (string | ObjectThreshold)[]> = {};
  for (const t of list) {
    const expr = thresholdExpr(t);
    const rendered: string | ObjectThreshold =
      t.abortOnFail === undefined
        ? expr
        : {
            threshold: expr,
            abortOnFail: t.abortOnFail,
            ...(t.delayAbortEval !== undefined ? { delayAbortEval: t.delayAbortEval } : {}),
          };
    (out[thresholdKey(t)] ??= []).push(rendered);
  }
  return out;
}

/** `t` narrowed to the measured phase (after any `extra` tags). */
function measured(t: K6Threshold, extra: Record<string, string> = {}): K6Threshold {
  return { ...t, tags: { ...t.tags, ...extra, phase: 'measure' } };
}

/** Options of {@link runThresholds}. */
export interface ThresholdOptions {
  /** Names of the Envoy hops the mesh probe measures (empty: no probe, no mesh thresholds). */
  envoyHops: readonly string[];
  /** Seconds from the start of the run before an abortOnFail threshold may stop it. */
  abortDelayS: number;
  /** Stop the run at the first broken budget (the gate). False measures the whole duration. @default true */
  abortOnFail?: boolean;
}

/** Every threshold of a run (see the module comment), as data; {@link renderThresholds} renders it. */
export function runThresholds(compiled: K6Thresholds, o: ThresholdOptions): K6Threshold[] {
  const delay = `${Math.ceil(o.abortDelayS)}s`;
  const gate = (t: K6Threshold): K6Threshold =>
    o.abortOnFail === false
      ? { ...t, abortOnFail: false }
      : { ...t, abortOnFail: true, delayAbortEval: delay };
  const mesh = compiled.meshOverhead?.metric;
  const out: K6Threshold[] = compiled.thresholds.flatMap((t) =>
    mesh !== undefined && t.metric === mesh
      ? o.envoyHops.map((hop) => gate(measured(t, { hop })))
      : [gate(measured(t))],
  );
  const phase = () => ({ phase: 'measure' });
  out.push(
    gate({
      metric: 'http_req_failed',
      tags: phase(),
      statistic: 'rate',
      comparison: '<',
      value: MAX_ERROR_RATE,
    }),
    gate({
      metric: 'checks',
      tags: phase(),
      statistic: 'rate',
      comparison: '>',
      value: 1 - MAX_ERROR_RATE,
    }),
    // Judged at the end only: a reconnect in the first seconds must not abort a long run.
    ...['http_req_connecting', 'http_req_tls_handshaking'].map((metric): K6Threshold => ({
      metric,
      tags: phase(),
      statistic: { percentile: 99 },
      comparison: '<=',
      value: 0,
    })),
  );
  return out;
}
