/**
 * The report of one run: k6's JSON summary (`--summary-export`, the legacy format k6 1.x still
 * writes) read into plain figures, and `summary.md`, a table of route × p50/p95/p99/error rate against
 * the budgets, the per-hop mesh overhead, Envoy's own timing, k6's CPU and the machine's load
 * (rendered by summary-md.ts).
 */
import type { K6Environment, K6Thresholds } from '@trellis/policy';
import type { CpuUsage } from './cpu.ts';
import { K6_CPU_WARN } from './cpu.ts';
import type { EnvoyTiming } from './envoy-stats.ts';
import type { K6Plan, MeshHop, MeshPathName, ScenarioName } from './plan-types.ts';
import type { PlanLayout } from './plan.ts';
import { thresholdExpr, thresholdKey } from './thresholds.ts';
import { pct } from './format.ts';

/** One metric of a `--summary-export` file: trend stats, or rate/counter values, and thresholds. */
export interface K6ExportMetric {
  [stat: string]: number | Record<string, boolean> | undefined;
  /** Threshold expression → true when it was crossed (the legacy export's meaning). */
  thresholds?: Record<string, boolean>;
}

/** The parts of k6's `--summary-export` JSON the report reads. */
export interface K6Export {
  metrics: Record<string, K6ExportMetric>;
  root_group?: { checks?: Record<string, { name: string; passes: number; fails: number }> };
}

/** One threshold's outcome. */
export interface ThresholdResult {
  /** k6's key (`metric{tag:value,...}`) and expression (`p(99)<=10`). */
  key: string;
  expr: string;
  metric: string;
  tags: Record<string, string>;
  ok: boolean;
  /** The measured value the expression compared, when the export has it. */
  value: number | null;
}

/** A route's measured figures against its budget. */
export interface RouteResult {
  route: string;
  method: string;
  path: string;
  /** Planned rate of the measured phase (base rate for a spike), and the budget's rate. */
  rps: number;
  budgetRps: number;
  count: number;
  /** Achieved rate over the measured window. */
  achievedRps: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errorRate: number | null;
  /** The budget the run is judged by (the environment's, when it names the route). */
  budget: { p50Ms?: number; p99Ms: number; maxErrorRate: number };
  /** The environment whose budget judged this route; absent when production's did. */
  environment?: string;
  /** The route's production budget, shown beside the judged one. */
  production: { rps: number; p50Ms?: number; p99Ms: number; maxErrorRate: number };
  /** Crossed thresholds of this route, e.g. `p(99)<=10`. */
  breached: string[];
}

/** One mesh path's request time (ms). */
export interface PathResult {
  name: MeshPathName;
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** One hop's overhead (ms): paired per-iteration differences, and the difference of percentiles. */
export interface HopResult extends MeshHop {
  count: number;
  /** Percentiles of the paired differences (what the thresholds judge). */
  p50: number | null;
  p99: number | null;
  /** p50 and p99 of the outer path minus those of the inner path. */
  deltaP50: number | null;
  deltaP99: number | null;
  budget?: { p50Ms: number; p99Ms: number };
  /** The production mesh budget (`budgets.mesh`), beside the judged one, on Envoy hops. */
  production?: { p50Ms: number; p99Ms: number };
  breached: string[];
}

/** Everything summary.md and the chart show. */
export interface ReportData {
  scenario: ScenarioName;
  startedAt: string;
  finishedAt: string;
  command: string;
  target: string;
  machine: { cpu: string; cores: number; memGiB: number; kernel: string };
  loadAverage: { start: number[]; end: number[] };
  k6: { version: string; cpu: CpuUsage | null };
  exitCode: number;
  /** The environment whose budgets judged the run (`--environment`); absent: production's. */
  environment?: K6Environment;
  layout: PlanLayout;
  overrides: string[];
  thresholds: ThresholdResult[];
  routes: RouteResult[];
  errorRate: number | null;
  checksRate: number | null;
  connectingP99: number | null;
  tlsHandshakingP99: number | null;
  measuredRequests: number | null;
  droppedIterations: number;
  mesh: {
    paths: PathResult[];
    hops: HopResult[];
    /** The mesh budget the Envoy hops are judged by, and production's (the same without an environment). */
    budget?: { p50Ms: number; p99Ms: number };
    production?: { p50Ms: number; p99Ms: number };
    /** The environment whose mesh budget judged; absent when production's did. */
    environment?: string;
  } | null;
  envoy: EnvoyTiming[];
  /** Plain-language warnings (k6 CPU, dropped iterations, missing mesh endpoints, ...). */
  notes: string[];
}

/** The k6 Trend the script records one hop's paired differences in (measured phase only). */
export function hopMetric(hop: string): string {
  return `trellis_hop_${hop.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function stat(m: K6ExportMetric | undefined, k: string): number | null {
  const v = m?.[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The value a threshold expression compares: `p(99)<=10` → the metric's `p(99)`. */
function comparedValue(m: K6ExportMetric | undefined, expr: string): number | null {
  const agg = /^\s*([a-z]+(?:\([\d.]+\))?)\s*[<>=!]/.exec(expr)?.[1];
  if (!agg) return null;
  if (agg === 'rate') return stat(m, 'value');
  if (agg === 'count') return stat(m, 'count');
  return stat(m, agg === 'med' ? 'med' : agg);
}

/** Every threshold of the plan with its outcome in the export (missing metric = not evaluated). */
export function thresholdResults(layout: PlanLayout, exp: K6Export): ThresholdResult[] {
  return layout.thresholds.map((t) => {
    const key = thresholdKey(t);
    const expr = thresholdExpr(t);
    const m = exp.metrics[key];
    const crossed = m?.thresholds?.[expr];
    return {
      key,
      expr,
      metric: t.metric,
      tags: t.tags,
      ok: crossed !== true,
      value: comparedValue(m, expr),
    };
  });
}

/** Inputs of {@link collectReport}. */
export interface CollectInput {
  plan: K6Plan;
  layout: PlanLayout;
  compiled: K6Thresholds;
  exp: K6Export | null;
  base: Omit<
    ReportData,
    | 'layout'
    | 'thresholds'
    | 'routes'
    | 'errorRate'
    | 'checksRate'
    | 'connectingP99'
    | 'tlsHandshakingP99'
    | 'measuredRequests'
    | 'droppedIterations'
    | 'mesh'
    | 'notes'
    | 'environment'
  > & { notes?: string[] };
  /** Seconds actually measured (shorter when abortOnFail stopped the run). */
  measuredS: number;
}

/** Read the export into the report's figures, and add the warnings a reader needs. */
export function collectReport(i: CollectInput): ReportData {
  const exp: K6Export = i.exp ?? { metrics: {} };
  const M = exp.metrics;
  const thresholds = thresholdResults(i.layout, exp);
  const notes = [...(i.base.notes ?? [])];
  const breachedFor = (pred: (tags: Record<string, string>) => boolean): string[] =>
    thresholds.filter((t) => !t.ok && pred(t.tags)).map((t) => `${t.metric} ${t.expr}`);

  const routes: RouteResult[] = i.layout.rates.map((r) => {
    const d = M[`http_req_duration{route:${r.route.name},phase:measure}`];
    const f = M[`http_req_failed{route:${r.route.name},phase:measure}`];
    const count = stat(d, 'count') ?? 0;
    // k6 reports 0 for every stat of an empty sub-metric: show n/a instead.
    const got = (m: K6ExportMetric | undefined, k: string): number | null =>
      count > 0 ? stat(m, k) : null;
    return {
      route: r.route.name,
      method: r.route.method,
      path: r.route.path,
      rps: r.rps,
      budgetRps: r.budget.rps,
      count,
      achievedRps: i.measuredS > 0 ? count / i.measuredS : null,
      p50: got(d, 'p(50)'),
      p95: got(d, 'p(95)'),
      p99: got(d, 'p(99)'),
      errorRate: got(f, 'value'),
      budget: {
        ...(r.budget.p50Ms !== undefined ? { p50Ms: r.budget.p50Ms } : {}),
        p99Ms: r.budget.p99Ms,
        maxErrorRate: r.budget.maxErrorRate,
      },
      ...(r.budget.environment !== undefined ? { environment: r.budget.environment } : {}),
      production: { ...r.budget.production },
      breached: breachedFor((t) => t.route === r.route.name),
    };
  });

  let mesh: ReportData['mesh'] = null;
  if (i.plan.mesh) {
    const paths: PathResult[] = i.plan.mesh.paths.map((p) => {
      const m = M[`trellis_path_${p.name}`];
      const count = stat(m, 'count') ?? 0;
      const got = (k: string): number | null => (count > 0 ? stat(m, k) : null);
      return { name: p.name, count, p50: got('p(50)'), p95: got('p(95)'), p99: got('p(99)') };
    });
    const byName = new Map(paths.map((p) => [p.name, p]));
    const mo = i.compiled.meshOverhead;
    const budget = mo ? { p50Ms: mo.p50Ms, p99Ms: mo.p99Ms } : undefined;
    const production = mo ? { p50Ms: mo.production.p50Ms, p99Ms: mo.production.p99Ms } : undefined;
    const hops: HopResult[] = i.plan.mesh.hops.map((h) => {
      const m = M[hopMetric(h.name)];
      const outer = byName.get(h.outer);
      const inner = byName.get(h.inner);
      const delta = (k: 'p50' | 'p99'): number | null =>
        outer?.[k] != null && inner?.[k] != null ? outer[k] - inner[k] : null;
      const count = stat(m, 'count') ?? 0;
      return {
        ...h,
        count,
        p50: count > 0 ? stat(m, 'p(50)') : null,
        p99: count > 0 ? stat(m, 'p(99)') : null,
        deltaP50: delta('p50'),
        deltaP99: delta('p99'),
        ...(h.envoy && budget ? { budget } : {}),
        ...(h.envoy && production ? { production } : {}),
        breached: breachedFor((t) => t.hop === h.name),
      };
    });
    mesh = {
      paths,
      hops,
      ...(budget ? { budget } : {}),
      ...(production ? { production } : {}),
      ...(mo?.environment !== undefined ? { environment: mo.environment } : {}),
    };
  } else {
    notes.push(
      'Mesh overhead not measured: the target names no fewer-hop endpoints (mesh.appUrl, mesh.sidecarUrl, mesh.ingressUrl).',
    );
  }

  const measuredRequests = stat(M['http_reqs{phase:measure}'], 'count');
  const some = (measuredRequests ?? 0) > 0;
  const dropped = Object.entries(M)
    .filter(([k]) => k.startsWith('dropped_iterations{scenario:measure-'))
    .reduce((s, [, m]) => s + (stat(m, 'count') ?? 0), 0);
  if (dropped > 0)
    notes.push(
      `k6 dropped ${dropped} iterations while measuring: it had no free VU when one was due, so the planned rate was not reached (the system was slower than 50 ms per request at times, or k6 was short of CPU).`,
    );
  const cpu = i.base.k6.cpu;
  if (cpu && cpu.average > K6_CPU_WARN)
    notes.push(
      `WARNING: k6 used ${pct(cpu.average)} of one core on average while measuring (over ${pct(K6_CPU_WARN)}): these latencies describe k6 as much as Trellis. Lower --rps or give k6 a core of its own.`,
    );
  if (!cpu) notes.push('k6 CPU not recorded (the measured window never started).');
  if (i.exp === null) notes.push('k6 wrote no JSON summary: see k6.log.');

  return {
    ...i.base,
    ...(i.compiled.environment ? { environment: { ...i.compiled.environment } } : {}),
    layout: i.layout,
    thresholds,
    routes,
    errorRate: some ? stat(M['http_req_failed{phase:measure}'], 'value') : null,
    checksRate: some ? stat(M['checks{phase:measure}'], 'value') : null,
    connectingP99: some ? stat(M['http_req_connecting{phase:measure}'], 'p(99)') : null,
    tlsHandshakingP99: some ? stat(M['http_req_tls_handshaking{phase:measure}'], 'p(99)') : null,
    measuredRequests,
    droppedIterations: dropped,
    mesh,
    notes,
  };
}
