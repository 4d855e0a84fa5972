import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  alive,
  startSupervised,
  stopSupervised,
  supervisedStatus,
} from '../src/supervisor/index.ts';
import type { SuperviseSpec } from '../src/supervisor/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-sup-'));
const specs: SuperviseSpec[] = [];

function spec(name: string, script: string): SuperviseSpec {
  const s: SuperviseSpec = {
    name,
    command: process.execPath,
    args: ['-e', script],
    env: { PATH: process.env.PATH ?? '' },
    cwd: dir,
    logFile: join(dir, `${name}.log`),
    stateFile: join(dir, `${name}.state.json`),
    backoffMs: 50,
    maxBackoffMs: 200,
    stopGraceMs: 2_000,
  };
  specs.push(s);
  return s;
}

async function until<T>(f: () => T | null | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

afterAll(async () => {
  for (const s of specs) await stopSupervised(s.stateFile);
  rmSync(dir, { recursive: true, force: true });
});

describe('supervisor', () => {
  it('restarts a crashed child, as kubelet would, and stops the whole group', async () => {
    const s = spec('sleeper', 'console.log("up " + process.pid); setInterval(() => {}, 1000)');
    const first = await startSupervised(s);
    expect(first.status).toBe('running');
    const pid1 = first.childPid ?? 0;
    expect(alive(pid1)).toBe(true);

    process.kill(pid1, 'SIGKILL');
    const restarted = await until(() => {
      const st = supervisedStatus(s.stateFile);
      return st && st.status === 'running' && st.childPid !== pid1 ? st : null;
    });
    expect(restarted.restarts).toBe(1);
    expect(restarted.lastExit?.signal).toBe('SIGKILL');
    expect(readFileSync(s.logFile, 'utf8')).toMatch(/restart #1/);

    const pid2 = restarted.childPid ?? 0;
    await stopSupervised(s.stateFile);
    expect(alive(restarted.supervisorPid)).toBe(false);
    expect(alive(pid2)).toBe(false);
    expect(supervisedStatus(s.stateFile)).toBeNull();
  });

  it('reports nothing running once the supervisor itself is killed, and stop still reaps the child', async () => {
    const s = spec('orphan', 'setInterval(() => {}, 1000)');
    const st = await startSupervised(s);
    process.kill(st.supervisorPid, 'SIGKILL');
    await until(() => !alive(st.supervisorPid));
    expect(supervisedStatus(s.stateFile)).toBeNull();
    expect(alive(st.childPid)).toBe(true);
    await stopSupervised(s.stateFile);
    await until(() => !alive(st.childPid));
  });

  it('backs off exponentially for a child that keeps crashing', async () => {
    const s = spec('crasher', 'process.exit(3)');
    await startSupervised(s);
    const st = await until(() => {
      const x = supervisedStatus(s.stateFile);
      return x && x.restarts >= 3 ? x : null;
    });
    expect(st.lastExit?.code).toBe(3);
    await stopSupervised(s.stateFile);
  });
});
