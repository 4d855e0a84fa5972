// The Pulumi toolchain end to end: our CLI build, our Node.js language host and dynamic-provider plugin,
// a file backend and the passphrase secrets provider, driving a one-resource TypeScript program.
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot } from '../src/toolchain/cache.ts';
import { pulumi, pulumiEnv } from '../src/toolchain/pulumi.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/pulumi-dynamic/', import.meta.url));
// packages/local's node_modules, which holds @pulumi/pulumi after `pnpm install`.
const NODE_MODULES = fileURLToPath(new URL('../node_modules/', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = '';
let program = '';
let target = '';
let bin = '';
let env: NodeJS.ProcessEnv = {};

/** Run pulumi in the program dir; never throws, so that tests can assert on failures too. */
function pulumiRun(args: readonly string[], timeoutMs = 180_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      bin,
      [...args, '--non-interactive'],
      { cwd: program, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await pulumiRun(args);
  if (r.code !== 0)
    throw new Error(`pulumi ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-pulumi-'));
  program = join(dir, 'program');
  target = join(dir, 'greeting.txt');
  // A cold build of the CLI takes 10-30 min on two cores.
  const tool = await pulumiEnv({ home: join(dir, 'pulumi-home') });
  bin = tool.bin;
  // A throwaway passphrase for this test's throwaway stack.
  env = { ...tool.env, PULUMI_CONFIG_PASSPHRASE: 'component-test-only' };
  cpSync(FIXTURE, program, { recursive: true });
  symlinkSync(NODE_MODULES, join(program, 'node_modules'));
  mkdirSync(join(dir, 'state'));
  await ok(['login', `file://${join(dir, 'state')}`]);
  await ok(['stack', 'init', 'dev', '--secrets-provider', 'passphrase']);
  await ok(['config', 'set', 'path', target]);
  await ok(['config', 'set', 'content', 'hello from trellis']);
  await ok(['config', 'set', '--secret', 'token', 's3cr3t']);
}, 90 * 60_000);

afterAll(async () => {
  // Best effort: remove whatever a failed test left behind, then the whole temp dir.
  if (bin && existsSync(join(program, 'Pulumi.dev.yaml'))) await pulumiRun(['destroy', '--yes']);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('pulumi toolchain', () => {
  it('reports a CLI at or above the minimum and a language host that starts', async () => {
    const c = await pulumi.check();
    expect(c.problem).toBeUndefined();
    expect(c.runs).toBe(true);
    expect(c.location).toBe(bin);
  });

  it('pulumi up creates the file through the dynamic provider and sets the stack outputs', async () => {
    const up = await pulumiRun(['up', '--yes', '--skip-preview']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('hello from trellis');
    if (bin.startsWith(cacheRoot())) {
      // Our CLI has the host and plugin next to it, so the engine does not warn about ambient plugins.
      expect(up.stdout + up.stderr).not.toMatch(/using pulumi-(language|resource)-\S+ from \$PATH/);
    }

    const shown = JSON.parse(await ok(['stack', 'output', '--json', '--show-secrets'])) as Record<
      string,
      unknown
    >;
    expect(shown).toEqual({ filePath: target, fileContent: 'hello from trellis', tokenLength: 6 });
    const hidden = JSON.parse(await ok(['stack', 'output', '--json'])) as Record<string, unknown>;
    expect(hidden.tokenLength).toBe('[secret]');
  });

  it('a second run finds no changes', async () => {
    const preview = await pulumiRun(['preview', '--expect-no-changes', '--json']);
    expect(preview.code, preview.stderr).toBe(0);
    const summary = (JSON.parse(preview.stdout) as { changeSummary: Record<string, number> })
      .changeSummary;
    expect(summary).toEqual({ same: 2 });
  });

  it('a config change updates the file in place', async () => {
    await ok(['config', 'set', 'content', 'changed']);
    const up = await pulumiRun(['up', '--yes', '--skip-preview']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/1 updated/);
    expect(readFileSync(target, 'utf8')).toBe('changed');
  });

  it('a program error fails the run with the program message', async () => {
    await ok(['config', 'set', 'fail', 'true']);
    const preview = await pulumiRun(['preview']);
    await ok(['config', 'rm', 'fail']);
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toContain('the fixture was asked to fail');
    // cmd/run logged the error itself (exit 32), so the host asked the engine to bail quietly.
    expect(preview.stdout + preview.stderr).not.toContain('Program exited with non-zero exit code');
  });

  it('pulumi destroy removes the file', async () => {
    const destroy = await pulumiRun(['destroy', '--yes', '--skip-preview']);
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    expect(existsSync(target)).toBe(false);
    const outputs = JSON.parse(await ok(['stack', 'output', '--json'])) as Record<string, unknown>;
    expect(outputs).toEqual({});
  });
});
