/** The regression gate's verdict as the Markdown a report shows. */
import type { GateVerdict, MetricVerdict } from './compare.ts';
import type { BlockPlan } from './plan.ts';

/** A number for people: 3 significant digits, n/a when there is none. */
function num(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  if (x === 0) return '0';
  return Math.abs(x) >= 1000 || Math.abs(x) < 0.001
    ? x.toExponential(2)
    : String(Number(x.toPrecision(3)));
}

function signed(x: number): string {
  return Number.isFinite(x) && x > 0 ? `+${num(x)}` : num(x);
}

function outcome(m: MetricVerdict): string {
  return m.outcome === 'regression' ? '**REGRESSION**' : m.outcome;
}

const headline: Record<GateVerdict['outcome'], string> = {
  pass: 'PASS: no metric regressed',
  fail: 'FAIL: a metric regressed',
  inconclusive: 'INCONCLUSIVE: some metric could not be judged (see its reason)',
};

/**
 * The verdict table: one row per metric with both arms' medians, the shift and its minimum, the
 * ratio, Cliff's delta, U and p, and the outcome with its reason. `plan` adds the schedule line.
 */
export function formatGateTable(v: GateVerdict, plan?: BlockPlan): string {
  const L: string[] = [`**Regression gate: ${headline[v.outcome]}**`, ''];
  if (plan)
    L.push(
      `${plan.pairs} A/B pairs of ${num(plan.blockS)} s blocks (${plan.order}, seed ${plan.seed}), ${plan.warmupPairs} warm-up pair(s) not judged; α = ${v.alpha}; A = baseline, B = candidate.`,
      '',
    );
  if (v.missingBlocks.length > 0)
    L.push(`Blocks without an observation: ${v.missingBlocks.join(', ')}.`, '');
  L.push(
    '| metric | A median | B median | shift (B − A, Hodges–Lehmann) | minimum effect | B / A | Cliff’s δ | U | p | outcome | why |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const m of v.metrics) {
    const u = m.metric.unit;
    L.push(
      `| ${m.metric.label} (${u}) | ${num(m.medianA)} | ${num(m.medianB)} | ${signed(m.shift)} | ${num(m.minEffect)} | ${m.ratio === null ? 'n/a' : `${num(m.ratio)}×`} | ${num(m.cliffsDelta)} | ${num(m.u)} | ${num(m.p)} (${m.method ?? 'not tested'}, ${m.nA} A / ${m.nB} B) | ${outcome(m)} | ${m.reason} |`,
    );
  }
  L.push('');
  return L.join('\n');
}
