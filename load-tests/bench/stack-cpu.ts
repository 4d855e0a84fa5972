/**
 * Run `./trellis load` against a running local stack and account the CPU every component spent per
 * request. Writes `cpu.md` and `cpu.json` next to the run's report.
 *
 *   node load-tests/bench/stack-cpu.ts [--stack local] -- --scenario read-heavy --rps 100 --no-abort
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPerRequest, renderCpuMd, snapshot, stackProcesses } from '../src/stack-cpu.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const sep = process.argv.indexOf('--');
const own = sep === -1 ? process.argv.slice(2) : process.argv.slice(2, sep);
const loadArgs = sep === -1 ? [] : process.argv.slice(sep + 1);
const { values } = parseArgs({
  args: own,
  options: { stack: { type: 'string', default: 'local' } },
});
const stack = values.stack;
const reportsDir = join(ROOT, 'reports', 'cpu');
const runDir = join(ROOT, '.trellis', stack, 'run');

const procs = stackProcesses(runDir);
const existing = new Set(safeList(reportsDir));
const before = snapshot(procs);
const t0 = performance.now();
const r = spawnSync(
  join(ROOT, 'trellis'),
  ['load', '--stack', stack, '--out', reportsDir, ...loadArgs],
  { stdio: 'inherit' },
);
const wallSeconds = (performance.now() - t0) / 1000;
const after = snapshot(procs);

const fresh = safeList(reportsDir).filter((d) => !existing.has(d));
if (fresh.length !== 1) {
  process.stderr.write(
    `stack-cpu: expected one new report under ${reportsDir}, found ${fresh.length}\n`,
  );
  process.exit(r.status ?? 1);
}
const reportDir = join(reportsDir, fresh[0] as string);
const summary = JSON.parse(readFileSync(join(reportDir, 'summary.json'), 'utf8')) as {
  metrics: Record<string, { count?: number }>;
};
const report = JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')) as {
  k6?: { cpu?: { average: number; seconds: number } };
};
const requests = summary.metrics['http_reqs']?.count ?? 0;
const rows = cpuPerRequest(before, after, requests);
const k6Cpu = report.k6?.cpu;
const md = renderCpuMd(rows, {
  requests,
  wallSeconds,
  cores: cpus().length,
  ...(k6Cpu ? { k6CpuSeconds: k6Cpu.average * k6Cpu.seconds } : {}),
});
writeFileSync(
  join(reportDir, 'cpu.md'),
  `# CPU per request\n\n\`./trellis load ${loadArgs.join(' ')}\`\n\n${md}`,
);
writeFileSync(
  join(reportDir, 'cpu.json'),
  JSON.stringify({ requests, wallSeconds, rows }, null, 2),
);
process.stdout.write(`\n${md}\nwritten to ${join(reportDir, 'cpu.md')}\n`);
process.exitCode = r.status ?? 1;

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
