/**
 * `./trellis load --scenario gate`: the regression gate's self-check on this machine and build. Starts
 * the A/B stack (A, A′, the 2 ms fault-filter delay, the CPU burn; see arms.ts), runs one interleaved
 * gate run and writes its report (`gate.md`: the verdict tables, the blocks, the vs-peers table).
 * Exit 0 when the gate behaves as it must: A′ passes against A, and both injected regressions fail
 * it on the metric they change; 99 otherwise (the report says which comparison did not).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATE_ARMS, GATE_COMPARISONS } from './arms.ts';
import { runAb, type AbResult } from './run.ts';
import { startAbStack } from './stack.ts';

/** What each comparison of the self-check must conclude: its outcome and the metric that fails. */
export const EXPECTED: Record<string, { outcome: 'pass' | 'fail'; metric?: string }> = {
  A2: { outcome: 'pass' },
  delay: { outcome: 'fail', metric: 'traversal' },
  burn: { outcome: 'fail', metric: 'cpu:app' },
};

/** The comparisons whose verdict differs from {@link EXPECTED}, in words (empty: all as expected). */
export function selfCheckProblems(r: Pick<AbResult, 'verdicts'>): string[] {
  const out: string[] = [];
  for (const { comparison, verdict } of r.verdicts) {
    const want = EXPECTED[comparison.candidate];
    if (!want) continue;
    if (verdict.outcome !== want.outcome)
      out.push(
        `${comparison.candidate} against ${comparison.baseline}: ${verdict.outcome}, expected ${want.outcome}`,
      );
    else if (
      want.metric &&
      verdict.metrics.find((m) => m.metric.key === want.metric)?.outcome !== 'regression'
    )
      out.push(
        `${comparison.candidate} against ${comparison.baseline}: failed, but not on ${want.metric}`,
      );
  }
  return out;
}

/** Run the self-check; returns the exit code (0 or 99) and the report directory. */
export async function runGateSelfCheck(o: {
  reportsDir: string;
  command: string;
  modelFile?: string;
  log?: (line: string) => void;
}): Promise<{ exitCode: number; reportDir: string; problems: string[] }> {
  const root = mkdtempSync(join(tmpdir(), 'trellis-gate-'));
  const stack = await startAbStack(
    root,
    GATE_ARMS,
    o.modelFile !== undefined ? { modelFile: o.modelFile } : {},
  );
  try {
    const r = await runAb({
      stack,
      comparisons: GATE_COMPARISONS,
      reportsDir: o.reportsDir,
      command: o.command,
      ...(o.log ? { log: o.log } : {}),
    });
    const problems = selfCheckProblems(r);
    return { exitCode: problems.length === 0 ? 0 : 99, reportDir: r.reportDir, problems };
  } finally {
    await stack.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
