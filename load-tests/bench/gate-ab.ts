/**
 * The regression gate's own bench: starts the A/B stack (arms A and A′ identical, `delay` with the
 * HTTP fault filter's fixed 2 ms delay on its sidecar, `burn` whose app spins CPU per request), runs
 * one interleaved gate run and writes its report; `--runs N` repeats the run on the same stack, and
 * `--tally` prints how often each comparison failed: the false-alarm rate (A′ against A) and the
 * detection rates (delay, burn against A) of docs/performance.md. Bounded: every run has a fixed
 * schedule and k6 a time limit.
 *
 *   node load-tests/bench/gate-ab.ts [--runs 1] [--first-seed 1] [--rounds 6] [--block 2] [--rate 100]
 *                                    [--out reports/gate]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GATE_ARMS, GATE_COMPARISONS } from '../src/ab/arms.ts';
import { runAb } from '../src/ab/run.ts';
import { startAbStack } from '../src/ab/stack.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    // Run i uses seed first-seed + i, so that runs split over several calls draw fresh orders.
    'first-seed': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '6' },
    block: { type: 'string', default: '2' },
    rate: { type: 'string', default: '100' },
    out: { type: 'string', default: resolve(import.meta.dirname, '..', '..', 'reports', 'gate') },
  },
});
const runs = Number(values.runs);
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 50)) throw new Error('--runs: 1–50');
const root = mkdtempSync(join(tmpdir(), 'trellis-gate-bench-'));
const stack = await startAbStack(root, GATE_ARMS);
const tally = new Map<string, number>();
try {
  for (let i = 0; i < runs; i++) {
    const r = await runAb({
      stack,
      comparisons: GATE_COMPARISONS,
      reportsDir: values.out,
      rounds: Number(values.rounds),
      blockS: Number(values.block),
      rate: Number(values.rate),
      seed: Number(values['first-seed']) + i,
      command: `node load-tests/bench/gate-ab.ts ${process.argv.slice(2).join(' ')}`,
    });
    for (const v of r.verdicts) {
      const k = `${v.comparison.candidate} vs ${v.comparison.baseline}`;
      const failed = v.verdict.metrics
        .filter((m) => m.outcome === 'regression')
        .map((m) => m.metric.key);
      if (failed.length > 0) tally.set(k, (tally.get(k) ?? 0) + 1);
      process.stdout.write(
        `run ${i + 1} ${k}: ${v.verdict.outcome}${failed.length ? ` (${failed.join(', ')})` : ''}\n`,
      );
    }
    process.stdout.write(
      `run ${i + 1} load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')} report ${r.reportDir}\n`,
    );
  }
  for (const c of GATE_COMPARISONS) {
    const k = `${c.candidate} vs ${c.baseline}`;
    process.stdout.write(`${k}: failed ${tally.get(k) ?? 0} of ${runs} runs\n`);
  }
} finally {
  await stack.stop();
  rmSync(root, { recursive: true, force: true });
}
