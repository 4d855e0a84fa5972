import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, isZombie } from '../src/supervisor/client.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-zombie-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A real zombie: `sleep 0` whose parent (sh, exec'd into `sleep 5`) never waits for it. */
async function zombie(): Promise<{ pid: number; parent: ReturnType<typeof spawn> }> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const pid = await new Promise<number>((resolve) =>
    parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  // Until `sleep 0` has exited it is alive; wait for its exit (bounded).
  for (let i = 0; i < 100 && !isZombie(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return { pid, parent };
}

describe('alive (what refresh asks of a supervisor)', () => {
  it('is true for a running process and false for an exited one that is not yet reaped', async () => {
    expect(alive(process.pid)).toBe(true);
    const z = await zombie();
    try {
      expect(isZombie(z.pid)).toBe(true); // the case: exited, still in the process table
      expect(() => process.kill(z.pid, 0)).not.toThrow(); // which kill(pid, 0) alone calls alive
      expect(alive(z.pid)).toBe(false);
    } finally {
      z.parent.kill('SIGKILL');
    }
  });

  it("reads the state after the last ')' of /proc/<pid>/stat (a name may hold spaces and parentheses)", () => {
    const proc = join(dir, 'proc');
    const stat = (pid: number, line: string): void => {
      mkdirSync(join(proc, String(pid)), { recursive: true });
      writeFileSync(join(proc, String(pid), 'stat'), line);
    };
    stat(10, '10 (a b) c) Z 1 10 10 0 -1');
    stat(11, '11 (node) S 1 11 11 0 -1');
    stat(12, '12 (x) X 1 12 12 0 -1');
    expect(isZombie(10, proc)).toBe(true);
    expect(isZombie(11, proc)).toBe(false);
    expect(isZombie(12, proc)).toBe(true);
    expect(isZombie(13, proc)).toBe(false); // no such entry: left to kill(pid, 0)
  });
});
