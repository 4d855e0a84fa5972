/**
 * The k6 thresholds of a run, from the model's budgets as `compileK6Thresholds` compiles them:
 * - each budget threshold is narrowed to the measured phase (`phase:measure`, so the warm-up never
 *   counts) and stops the run early when broken (`abortOnFail`, after `delayAbortEval`);
 * - the mesh budget applies to each Envoy traversal separately (`hop:<name>`);
 * - the run-wide error rate stays below 0.1 % (failed requests, and failed checks);
 * - connections are reused: p99 of `http_req_connecting` and `http_req_tls_handshaking` is 0.
 * Threshold syntax (tag filters `metric{tag:value,...}`, abortOnFail, delayAbortEval):
 * https://grafana.com/docs/k6/latest/using-k6/thresholds/
 */
import type { K6Thresholds } from '@trellis/policy';
import type { ObjectThreshold } from 'k6/options';

/** The tag every measured request carries (from its scenario). */
export const MEASURE_TAG = 'phase:measure';
/** Run-wide error-rate ceiling (0.1 %). */
export const MAX_ERROR_RATE = 0.001;

/** A threshold key split into its metric and tag filter. */
export interface ThresholdKey {
  metric: string;
  tags: Record<string, string>;
}

/** Parse `metric{tag:value,tag2:value2}` (or a bare metric name). */
export function parseThresholdKey(key: string): ThresholdKey {
  const m = /^([A-Za-z0-9_]+)(?:\{(.*)\})?$/.exec(key);
  if (!m?.[1]) throw new Error(`threshold key '${key}' is not metric or metric{tag:value}`);
  const tags: Record<string, string> = {};
  for (const part of (m[2] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`threshold key '${key}': '${part}' is not tag:value`);
    tags[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return { metric: m[1], tags };
}

/** Render a threshold key; tags keep their insertion order. */
export function formatThresholdKey(k: ThresholdKey): string {
  const tags = Object.entries(k.tags).map(([t, v]) => `${t}:${v}`);
  return tags.length > 0 ? `${k.metric}{${tags.join(',')}}` : k.metric;
}

/** `key` with `phase:measure` added to its tag filter. */
export function measured(key: string, extra: Record<string, string> = {}): string {
  const k = parseThresholdKey(key);
  return formatThresholdKey({ metric: k.metric, tags: { ...k.tags, ...extra, phase: 'measure' } });
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

/** Every threshold of a run (see the module comment). */
export function runThresholds(
  compiled: K6Thresholds,
  o: ThresholdOptions,
): Record<string, (string | ObjectThreshold)[]> {
  const delay = `${Math.ceil(o.abortDelayS)}s`;
  const gate = (expr: string): ObjectThreshold =>
    o.abortOnFail === false
      ? { threshold: expr, abortOnFail: false }
      : { threshold: expr, abortOnFail: true, delayAbortEval: delay };
  const out: Record<string, (string | ObjectThreshold)[]> = {};
  const mesh = compiled.meshOverhead?.metric;
  for (const [key, exprs] of Object.entries(compiled.thresholds)) {
    if (mesh !== undefined && parseThresholdKey(key).metric === mesh) {
      for (const hop of o.envoyHops) out[measured(key, { hop })] = exprs.map(gate);
      continue;
    }
    out[measured(key)] = exprs.map(gate);
  }
  out[measured('http_req_failed')] = [gate(`rate<${MAX_ERROR_RATE}`)];
  out[measured('checks')] = [gate(`rate>${1 - MAX_ERROR_RATE}`)];
  // Judged at the end only: a reconnect in the first seconds must not abort a long run.
  out[measured('http_req_connecting')] = ['p(99)<=0'];
  out[measured('http_req_tls_handshaking')] = ['p(99)<=0'];
  return out;
}
