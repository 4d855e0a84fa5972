/**
 * A throwaway Pulumi stack of a test fixture program (infra/local/test/fixtures/*): its own temp dir,
 * file backend, Pulumi home and config file, so a component test can run `up`, `preview`, `refresh` and
 * `destroy` for real without touching the developer's stacks.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopSupervised } from '@trellis/local/supervisor';
import { pulumiEnv } from '@trellis/local/toolchain';

/** What one pulumi command did. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestStackOptions {
  /** The fixture program's directory (holds Pulumi.yaml). */
  fixture: string;
  stack: string;
  /** Prefix of the temp dir, e.g. `trellis-data-`. */
  tmpPrefix: string;
  /** Default timeout of one pulumi command. */
  timeoutMs: number;
}

export class TestStack {
  readonly o: TestStackOptions;
  dir = '';
  /** Where the stack's processes and files live (the fixture's `stackDir` config). */
  stackDir = '';
  configFile = '';
  bin = '';
  env: NodeJS.ProcessEnv = {};

  constructor(o: TestStackOptions) {
    this.o = o;
  }

  /** Temp dir, Pulumi home, file backend and `stack init`; the salted config file stays in the temp dir. */
  async init(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), this.o.tmpPrefix));
    this.stackDir = join(this.dir, 'stack');
    this.configFile = join(this.dir, `Pulumi.${this.o.stack}.yaml`);
    const tool = await pulumiEnv({ home: join(this.dir, 'pulumi-home') });
    this.bin = tool.bin;
    this.env = {
      ...tool.env,
      PULUMI_BACKEND_URL: `file://${join(this.dir, 'state')}`,
      // A throwaway passphrase for a throwaway stack.
      PULUMI_CONFIG_PASSPHRASE: `${this.o.stack}-component-test-only`,
    };
    mkdirSync(join(this.dir, 'state'));
    // `stack init` writes the salt next to Pulumi.yaml: do it in a scratch copy, keep the salt here.
    const scratch = join(this.dir, 'scratch');
    mkdirSync(scratch);
    copyFileSync(join(this.o.fixture, 'Pulumi.yaml'), join(scratch, 'Pulumi.yaml'));
    await new Promise<void>((resolve, reject) =>
      execFile(
        this.bin,
        ['stack', 'init', this.o.stack, '--secrets-provider', 'passphrase', '--non-interactive'],
        { cwd: scratch, env: this.env, timeout: 60_000 },
        (err, _o, stderr) => (err ? reject(new Error(`stack init: ${stderr}`)) : resolve()),
      ),
    );
    writeFileSync(this.configFile, readFileSync(join(scratch, `Pulumi.${this.o.stack}.yaml`)));
  }

  /** Run pulumi on the fixture with this stack (and its config file, except for `stack …`); never throws. */
  pulumi(
    args: readonly string[],
    timeoutMs = this.o.timeoutMs,
    config = args[0] !== 'stack',
  ): Promise<Result> {
    return new Promise((resolve) => {
      execFile(
        this.bin,
        [
          ...args,
          '--stack',
          this.o.stack,
          '--non-interactive',
          ...(config ? ['--config-file', this.configFile] : []),
        ],
        {
          cwd: this.o.fixture,
          env: this.env,
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 64 << 20,
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  /** {@link pulumi}, throwing with its output unless it exits 0; resolves to stdout. */
  async ok(args: readonly string[], timeoutMs?: number, config?: boolean): Promise<string> {
    const r = await this.pulumi(args, timeoutMs, config);
    if (r.code !== 0)
      throw new Error(`pulumi ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /**
   * The safety net of `afterAll`: destroy (unless the test already did), stop whatever a failed destroy
   * left running, remove the temp dir.
   */
  async cleanup(destroy: boolean): Promise<void> {
    if (destroy && this.bin && existsSync(join(this.dir, 'state'))) {
      const r = await this.pulumi(['destroy', '--yes', '--skip-preview']);
      if (r.code !== 0) console.error(`destroy failed:\n${r.stdout}\n${r.stderr}`);
    }
    const run = join(this.stackDir, 'run');
    if (this.stackDir && existsSync(run))
      for (const c of readdirSync(run)) {
        const st = join(run, c, 'supervisor.json');
        if (existsSync(st)) await stopSupervised(st).catch(() => undefined);
      }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port whose every port (`ports(base)`) is free, or an error naming `what`. */
export async function pickBase(ports: (base: number) => number[], what: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    // Below the kernel's ephemeral range (32768+), where Pulumi's plugins and outgoing connections take
    // ports at random after this check; and clear of `local` (8000) and the e2e stack (28000).
    const base = 10_000 + 1_000 * Math.floor(Math.random() * 18);
    const free = await Promise.all(ports(base).map(portFree));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no free base port found for the ${what}`);
}
