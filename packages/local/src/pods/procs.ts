/** Finding and ending the processes of a stack's pods: those in its namespaces or of its users. */
import { readdirSync, readFileSync } from 'node:fs';
import { run } from './exec.ts';

/** Pids of the processes whose network namespace is `netns` (`ip netns pids`). */
export async function netnsPids(netns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', netns], `processes in ${netns}`);
  return out.split('\n').filter(Boolean).map(Number);
}

function status(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
}

/** True while `pid` exists and is not a zombie (a zombie holds no namespace and runs nothing). */
export function running(pid: number): boolean {
  const s = status(pid);
  return s !== null && !/^State:\s*Z/m.test(s);
}

/** Pids of running processes whose real or effective uid is one of `uids`. */
export function uidPids(uids: readonly number[]): number[] {
  if (uids.length === 0) return [];
  const wanted = new Set(uids);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = status(Number(entry));
    const ids = s ? /^Uid:\s*(\d+)\s+(\d+)/m.exec(s) : null;
    if (!ids || /^State:\s*Z/m.test(s ?? '')) continue;
    if (wanted.has(Number(ids[1])) || wanted.has(Number(ids[2]))) pids.push(Number(entry));
  }
  return pids;
}

/** SIGKILL every pid and wait (at most `timeoutMs`) until none runs; returns those still running. */
export async function killAndWait(pids: readonly number[], timeoutMs = 5_000): Promise<number[]> {
  const own = new Set([process.pid, process.ppid, 1]);
  const targets = [...new Set(pids)].filter((p) => !own.has(p));
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  let left = targets.filter(running);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    left = left.filter(running);
  }
  return left;
}
