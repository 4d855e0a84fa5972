/**
 * Load-test the request path without the data stores: the mini stack of the component test (real
 * Keycloak, compiled sidecar and ingress Envoys, compiled nginx, a tiny in-memory orders app), then
 * one `runLoad`. For the figures that need no Cassandra or Kafka, the per-hop mesh overhead above all.
 *
 *   node load-tests/bench/harness.ts --scenario steady [--rps 500] [--duration 2m] [--warmup 20s]
 *                                    [--out reports] [--budget-override route:p99=N ...]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from '../src/run.ts';
import { parseDuration, parseScenario } from '../src/scenarios.ts';
import { startMiniStack } from '../test/fixtures/mini-stack.ts';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'steady' },
    rps: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'mesh-rate': { type: 'string' },
    out: { type: 'string', default: resolve(import.meta.dirname, '..', '..', 'reports') },
    'budget-override': { type: 'string', multiple: true, default: [] },
  },
});
const root = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
const stack = await startMiniStack(root);
try {
  const r = await runLoad({
    scenario: parseScenario(values.scenario),
    target: stack.target,
    model: stack.model,
    reportsDir: values.out,
    ...(values.rps ? { rps: Number(values.rps) } : {}),
    ...(values.duration ? { durationS: parseDuration(values.duration, '--duration') } : {}),
    ...(values.warmup ? { warmupS: parseDuration(values.warmup, '--warmup') } : {}),
    ...(values['mesh-rate'] ? { meshRate: Number(values['mesh-rate']) } : {}),
    budgetOverrides: values['budget-override'],
    command: `node load-tests/bench/harness.ts ${process.argv.slice(2).join(' ')}`,
  });
  process.exitCode = r.exitCode;
} finally {
  await stack.stop();
  rmSync(root, { recursive: true, force: true });
}
