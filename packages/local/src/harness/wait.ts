import type { ManagedProcess } from './process.ts';

export interface WaitOptions {
  /** What we wait for, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Fail at once, with its log tail, if this process exits while we wait. */
  proc?: ManagedProcess;
}

/**
 * Poll `probe` until it resolves truthy. Fails with the last probe error and the process log tail on
 * timeout, or straight away when the watched process dies.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | null | undefined | false>,
  opts: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastErr = 'not ready';
  for (;;) {
    if (opts.proc && !opts.proc.running) {
      throw new Error(
        `${opts.proc.name} exited (${JSON.stringify(opts.proc.exit)}) before ${opts.what}\n--- ${opts.proc.logFile} ---\n${opts.proc.tail()}`,
      );
    }
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tail = opts.proc ? `\n--- ${opts.proc.logFile} ---\n${opts.proc.tail()}` : '';
      throw new Error(
        `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what}: ${lastErr}${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}
