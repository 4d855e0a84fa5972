import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureAll } from '@trellis/local/toolchain';

const ROOT = resolve(import.meta.dirname, '../../../..');
const bin = (name: string): string => join(ROOT, 'node_modules', '.bin', name);

/** Run a step with inherited output; resolves its exit code. */
function step(title: string, cmd: string, args: string[]): Promise<number> {
  process.stderr.write(`\n\u001b[36m[trellis]\u001b[0m ${title}\n`);
  return new Promise((res) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (code, signal) => res(code ?? (signal ? 1 : 0)));
    child.on('error', () => res(1));
  });
}

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
}

/**
 * `test`: the whole suite, as CI runs it. Installs the toolchain first (the component tests start real
 * Cassandra, Kafka, Keycloak, Envoy and nginx), then format, lint, types and vitest. Ends with a
 * plain `Tests: N passed, N failed` line.
 */
export async function test(args: string[]): Promise<number> {
  await ensureAll();
  const failures: string[] = [];
  if (args.length === 0) {
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
  const out = mkdtempSync(join(tmpdir(), 'trellis-vitest-'));
  const json = join(out, 'results.json');
  const code = await step(
    'tests (vitest: unit, then component tests against real servers)',
    bin('vitest'),
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...args],
  );
  if (code !== 0) failures.push('tests');
  let summary = 'Tests: 0 passed, 1 failed (vitest wrote no results)';
  if (existsSync(json)) {
    const r = JSON.parse(readFileSync(json, 'utf8')) as VitestJson;
    const skipped = r.numPendingTests + r.numTodoTests;
    summary = `Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
    if (r.numTotalTests === 0) failures.push('no tests ran');
    if (skipped > 0) failures.push('skipped tests are not allowed');
  }
  rmSync(out, { recursive: true, force: true });
  if (failures.length > 0)
    process.stderr.write(`\n\u001b[31m[trellis]\u001b[0m failed: ${failures.join(', ')}\n`);
  process.stdout.write(`${summary}\n`);
  return failures.length === 0 ? 0 : 1;
}
