import { spawn } from 'node:child_process';
import { CommandError } from './errors.ts';
import { progress } from './log.ts';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill and fail after this long. @default 600_000 */
  timeoutMs?: number;
  /** Human description for errors and progress. */
  what: string;
  /** Echo output lines as progress (for long builds). @default false */
  echo?: boolean;
}

/** Run a command to completion; resolves stdout+stderr, throws CommandError on non-zero or timeout. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    const onData = (b: Buffer): void => {
      const s = b.toString();
      out += s;
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
      if (opts.echo)
        for (const line of s.split('\n')) if (line.trim()) progress(`  ${line.trim()}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timeout = opts.timeoutMs ?? 600_000;
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new CommandError(opts.what, `timed out after ${Math.round(timeout / 1000)} s`, out));
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CommandError(opts.what, `could not start ${cmd}: ${err.message}`, out));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new CommandError(opts.what, `${cmd} exited with ${code ?? signal}`, out));
    });
  });
}

/** Run and return null instead of throwing; for version probes in `doctor`. */
export async function tryRun(
  cmd: string,
  args: readonly string[],
  opts: Omit<RunOptions, 'what'> = {},
): Promise<string | null> {
  try {
    return await run(cmd, args, { ...opts, what: cmd, timeoutMs: opts.timeoutMs ?? 30_000 });
  } catch {
    return null;
  }
}
