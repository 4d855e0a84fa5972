/**
 * Measure what an environment's budgets (`budgets.environments` in trellis.yaml) must hold, and what
 * they catch: the mini stack of the gate's component test (real Keycloak, compiled sidecar and ingress
 * Envoys, compiled nginx, the in-memory orders app), optionally with one of issue 14's injected
 * regressions, then `--runs` back-to-back `runLoad`s (never aborted, so every figure is measured).
 * Prints one line per run: route p50 / p99, Envoy hop p50 / p99, exit code, load average.
 *
 *   node load-tests/bench/env-budgets.ts [--inject none|delay|burn] [--runs 3] [--env ci]
 *        [--scenario smoke] [--rps N] [--duration 30s] [--warmup 5s] [--mesh-rate N] [--out reports]
 *
 * `delay`: Envoy's fault filter, 2 ms on every request, in the orders-api sidecar; `burn`: the app
 * spins 250 µs of CPU per request. Both are the regression gate's own (load-tests/src/ab/arms.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { INJECTED_BURN_US, INJECTED_DELAY_MS } from '../src/ab/arms.ts';
import { withFaultDelay } from '../src/ab/stack.ts';
import { runLoad } from '../src/run.ts';
import { parseDuration, parseScenario } from '../src/scenarios.ts';
import { startMiniStack, type MiniStackOptions } from '../test/fixtures/mini-stack.ts';

const { values } = parseArgs({
  options: {
    inject: { type: 'string', default: 'none' },
    runs: { type: 'string', default: '3' },
    env: { type: 'string' },
    scenario: { type: 'string', default: 'smoke' },
    rps: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'mesh-rate': { type: 'string' },
    out: { type: 'string', default: resolve(import.meta.dirname, '..', '..', 'reports') },
  },
  strict: true,
});
const injections: Record<string, MiniStackOptions> = {
  none: {},
  delay: { sidecar: (b) => withFaultDelay(b, INJECTED_DELAY_MS) },
  burn: { burnUs: INJECTED_BURN_US },
};
const inject = injections[values.inject];
if (!inject)
  throw new Error(
    `--inject: '${values.inject}' is not one of ${Object.keys(injections).join(', ')}`,
  );
const runs = Number(values.runs);
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 20))
  throw new Error(`--runs: '${values.runs}' must be a whole number from 1 to 20`);

const ms = (v: number | null | undefined): string => (v == null ? '—' : v.toFixed(2));
const root = mkdtempSync(join(tmpdir(), 'trellis-env-budgets-'));
const stack = await startMiniStack(root, inject);
try {
  for (let i = 1; i <= runs; i++) {
    const r = await runLoad({
      scenario: parseScenario(values.scenario),
      target: stack.target,
      model: stack.model,
      reportsDir: values.out,
      abortOnFail: false,
      ...(values.env ? { environment: values.env } : {}),
      ...(values.rps ? { rps: Number(values.rps) } : {}),
      ...(values.duration ? { durationS: parseDuration(values.duration, '--duration') } : {}),
      ...(values.warmup ? { warmupS: parseDuration(values.warmup, '--warmup') } : {}),
      ...(values['mesh-rate'] ? { meshRate: Number(values['mesh-rate']) } : {}),
      command: `node load-tests/bench/env-budgets.ts ${process.argv.slice(2).join(' ')}`,
      log: () => undefined,
    });
    const rep = r.report;
    const routes = rep.routes.map((x) => `${x.route} ${ms(x.p50)} / ${ms(x.p99)}`);
    const hops = (rep.mesh?.hops ?? []).map((h) => `${h.name} ${ms(h.p50)} / ${ms(h.p99)}`);
    const breached = [...rep.routes, ...(rep.mesh?.hops ?? [])].flatMap((x) => x.breached);
    process.stdout.write(
      `${values.inject} run ${i}: ${rep.startedAt} load ${rep.loadAverage.start.map((l) => l.toFixed(2)).join(' / ')}` +
        ` | ${routes.join(' | ')} | ${hops.join(' | ')} | exit ${r.exitCode}` +
        ` | breached: ${breached.length > 0 ? breached.join(', ') : 'none'} | ${r.reportDir}\n`,
    );
  }
} finally {
  await stack.stop();
  rmSync(root, { recursive: true, force: true });
}
