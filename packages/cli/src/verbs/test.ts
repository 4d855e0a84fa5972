import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { clusterTools, ensureAll } from '@trellis/local/toolchain';
import type { FileTime } from './file-times-reporter.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const bin = (name: string): string => join(ROOT, 'node_modules', '.bin', name);

/**
 * The vitest projects, run one after another: cheap first, the whole-stack suite last. `cluster` is
 * infra/k8s applied to a loopback API server with the real Kubernetes provider.
 */
/** What `./trellis test` (and CI) runs, in this order. */
const PROJECTS = ['unit', 'component', 'faults', 'cluster', 'e2e'] as const;
/**
 * Run only when asked (`--project extended`): suites that prove what CI does not rely on, kept out of
 * the default run to hold its warm time under 20 minutes (docs/toolchain.md, "Test tiers").
 */
const OPT_IN = ['extended'] as const;

/** Run a step with inherited output; resolves its exit code. */
function step(title: string, cmd: string, args: string[]): Promise<number> {
  process.stderr.write(`\n\u001b[36m[trellis]\u001b[0m ${title}\n`);
  return new Promise((res) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (code, signal) => res(code ?? (signal ? 1 : 0)));
    child.on('error', () => res(1));
  });
}

export interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
  testResults?: {
    name: string;
    startTime: number;
    endTime: number;
    status?: string;
    message?: string;
    assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[];
  }[];
}

/**
 * Each failed test of a project, named by file and full title with the first lines of its error, so the
 * last screen of CI's log says what failed (a long log is often seen only from its tail). A file that
 * failed outside any test (a set-up hook, an import) is named with its own message.
 */
export function failedTests(r: VitestJson): string[] {
  const out: string[] = [];
  for (const f of r.testResults ?? []) {
    const file = relative(ROOT, f.name);
    const failed = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed)
      out.push(`${file} > ${a.fullName}\n${excerpt(a.failureMessages?.[0], f.name)}`);
    if (failed.length === 0 && f.status === 'failed')
      out.push(`${file}\n${excerpt(f.message, f.name)}`);
  }
  return out;
}

/**
 * The first lines of an error message, indented, without colour codes. When the error was thrown deep
 * in a library (its first frames in node_modules), the first frame in the test file itself follows, so
 * the log says which call of the test failed.
 */
function excerpt(message: string | undefined, testFile?: string): string {
  const all = (message ?? '(no message)')
    .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const lines = all.slice(0, 6);
  const own = testFile
    ? all.slice(6).find((l) => /^\s*at /.test(l) && l.includes(testFile))
    : undefined;
  if (own) lines.push(`    … ${own.trim()}`);
  return lines.map((l) => `        ${l.slice(0, 300)}`).join('\n');
}

/**
 * The slowest test files of a project, by their whole time (set-up hooks included, from
 * file-times-reporter.ts), so a suite that grows past CI's time budget is seen in CI's own log.
 */
function slowest(project: string, times: FileTime[], ms: number): string {
  const total = times.reduce((sum, t) => sum + t.totalS, 0);
  const rows = [...times]
    .sort((a, b) => b.totalS - a.totalS)
    .slice(0, 8)
    .map(
      (t) =>
        `    ${t.totalS.toFixed(1).padStart(7)} s  ${relative(ROOT, t.file)} (load ${t.loadS.toFixed(1)} s, hooks and tests ${t.runS.toFixed(1)} s)`,
    )
    .join('\n');
  return `[trellis] ${project}: ${(ms / 1000).toFixed(0)} s wall, ${total.toFixed(0)} s in ${times.length} files; the slowest, set-up included:\n${rows}\n`;
}

/**
 * `test [--project P] [vitest filters...]`: the whole suite, as CI runs it. Installs the toolchain
 * first (the tests start real Cassandra, Kafka, Keycloak, Envoy and nginx; the cluster project adds the
 * Kubernetes provider), then format, lint and types, then the unit, component, cluster and end-to-end
 * projects in turn. Ends with `Tests: N passed, N failed`. `--project extended` runs the opt-in tier
 * instead (`OPT_IN`), which the default run leaves out.
 */
export async function test(args: string[]): Promise<number> {
  const failures: string[] = [];
  const pi = args.indexOf('--project');
  const only = pi >= 0 ? args[pi + 1] : undefined;
  const filters = pi >= 0 ? [...args.slice(0, pi), ...args.slice(pi + 2)] : args;
  const known: readonly string[] = [...PROJECTS, ...OPT_IN];
  if (only !== undefined && !known.includes(only)) {
    throw new Error(`--project must be one of ${known.join(', ')}`);
  }
  await ensureAll();
  // The cluster tier: only when the cluster project runs.
  if (only === undefined || only === 'cluster') await ensureAll(clusterTools);
  if (filters.length === 0 && only === undefined) {
    if (
      (await step('format (prettier --check)', bin('prettier'), [
        '--check',
        '.',
        '--log-level',
        'warn',
      ])) !== 0
    )
      failures.push('format');
    if ((await step('lint (eslint, import boundaries)', bin('eslint'), ['.'])) !== 0)
      failures.push('lint');
    if ((await step('types (tsc --noEmit)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'])) !== 0)
      failures.push('types');
  }
  // Each project's JSON report stays in .trellis/test-reports after the run, so a failure seen in CI's
  // log can be read whole afterwards.
  const out = join(ROOT, '.trellis', 'test-reports');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const totals = { passed: 0, failed: 0, skipped: 0, total: 0 };
  const timings: string[] = [];
  const failedList: string[] = [];
  for (const project of only === undefined ? PROJECTS : [only]) {
    const json = join(out, `${project}.json`);
    const fileTimes = join(out, `${project}.files.json`);
    process.env.TRELLIS_FILE_TIMES = fileTimes;
    const t0 = Date.now();
    const code = await step(`tests: ${project}`, bin('vitest'), [
      'run',
      '--project',
      project,
      '--passWithNoTests',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${json}`,
      `--reporter=${join(import.meta.dirname, 'file-times-reporter.ts')}`,
      // vitest's default is one worker fewer than the cores: one on CI's 2-core runner. The unit files
      // start no server, so every core takes them (88.9 and 86.3 s with one worker, 50.6 and 50.7 s
      // with two, 2026-12-07). The other projects run one file at a time (vitest.config.ts).
      ...(project === 'unit' ? [`--maxWorkers=${Math.max(2, availableParallelism())}`] : []),
      ...filters,
    ]);
    if (code !== 0) failures.push(`${project} tests`);
    if (existsSync(json)) {
      const r = JSON.parse(readFileSync(json, 'utf8')) as VitestJson;
      totals.passed += r.numPassedTests;
      totals.failed += r.numFailedTests;
      totals.skipped += r.numPendingTests + r.numTodoTests;
      totals.total += r.numTotalTests;
      const times = existsSync(fileTimes)
        ? (JSON.parse(readFileSync(fileTimes, 'utf8')) as FileTime[])
        : [];
      timings.push(slowest(project, times, Date.now() - t0));
      failedList.push(...failedTests(r).map((f) => `  [${project}] ${f}`));
    } else if (code !== 0) {
      totals.failed += 1;
    }
  }
  if (timings.length > 0) process.stderr.write(`\n${timings.join('')}`);
  if (totals.total === 0) failures.push('no tests ran');
  if (totals.skipped > 0) failures.push('skipped tests are not allowed');
  if (failedList.length > 0)
    process.stderr.write(
      `\n\u001b[31m[trellis]\u001b[0m ${failedList.length} failed test(s) (whole reports in ${relative(ROOT, out)}):\n${failedList.join('\n')}\n`,
    );
  if (failures.length > 0)
    process.stderr.write(`\n\u001b[31m[trellis]\u001b[0m failed: ${failures.join(', ')}\n`);
  const skipped = totals.skipped ? `, ${totals.skipped} skipped` : '';
  process.stdout.write(`Tests: ${totals.passed} passed, ${totals.failed} failed${skipped}\n`);
  return failures.length === 0 ? 0 : 1;
}
