import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export interface StartOptions {
  /** Component name, used in logs and errors. */
  name: string;
  command: string;
  args: readonly string[];
  /** The component's own directory: `log` and `pid` go here, data dirs below it. */
  dir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Grace period between SIGTERM and SIGKILL on stop. @default 15_000 */
  stopGraceMs?: number;
}

const live = new Set<ManagedProcess>();

/**
 * A real process in its own process group, with output to `<dir>/log` and its pid in `<dir>/pid`.
 * `stop()` signals the whole group, so wrapper scripts and their JVMs go together. Every live process
 * is killed when this Node process exits, so a failing test leaves nothing behind.
 */
export class ManagedProcess {
  readonly name: string;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly grace: number;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;

  private constructor(opts: StartOptions, child: ChildProcess, logFile: string) {
    this.name = opts.name;
    this.dir = opts.dir;
    this.logFile = logFile;
    this.child = child;
    this.grace = opts.stopGraceMs ?? 15_000;
    if (child.pid === undefined) throw new Error(`${opts.name}: could not start ${opts.command}`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve();
      });
    });
  }

  /** Start `command` detached in a new process group. Kills a leftover from a crashed earlier run first. */
  static start(opts: StartOptions): ManagedProcess {
    mkdirSync(opts.dir, { recursive: true });
    const pidFile = join(opts.dir, 'pid');
    killLeftover(pidFile);
    const logFile = join(opts.dir, 'log');
    const fd = openSync(logFile, 'a');
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd ?? opts.dir,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    const p = new ManagedProcess(opts, child, logFile);
    writeFileSync(pidFile, String(p.pid));
    live.add(p);
    return p;
  }

  /** Null while running; the exit code or signal once it has ended. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exitInfo;
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  /** The last `lines` of the log, for error messages. */
  tail(lines = 40): string {
    if (!existsSync(this.logFile)) return '';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /**
   * SIGKILL the group at once, no grace (a crash, for fault tests). Resolves when the process is gone;
   * its files stay, so it can be started again on the same directory.
   */
  async kill(): Promise<void> {
    signalGroup(this.pid, 'SIGKILL');
    await this.exited;
    rmSync(join(this.dir, 'pid'), { force: true });
  }

  /** SIGTERM the group, wait for the grace period, then SIGKILL. Resolves when the process is gone. */
  async stop(): Promise<void> {
    if (this.running) {
      signalGroup(this.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), this.grace);
      await this.exited;
      clearTimeout(timer);
    }
    // The leader is gone; make sure no child of the group outlives it.
    signalGroup(this.pid, 'SIGKILL');
    rmSync(join(this.dir, 'pid'), { force: true });
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // no such group: already gone
  }
}

function killLeftover(pidFile: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
  if (Number.isInteger(pid) && pid > 1) signalGroup(pid, 'SIGKILL');
  rmSync(pidFile, { force: true });
}

/** Stop every live process (used by test teardown). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

// Last resort: never leave a server behind when the runner exits or is interrupted.
process.on('exit', () => {
  for (const p of live) signalGroup(p.pid, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const p of live) signalGroup(p.pid, 'SIGKILL');
    process.exit(130);
  });
}
