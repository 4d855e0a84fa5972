import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cpuPerRequest,
  ppidFromStat,
  processTree,
  renderCpuMd,
  snapshot,
  stackProcesses,
  withStackCpu,
} from '../src/stack-cpu.ts';

const root = mkdtempSync(join(tmpdir(), 'trellis-stack-cpu-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function supervised(component: string, state: Record<string, unknown> | string): void {
  mkdirSync(join(root, 'run', component), { recursive: true });
  writeFileSync(
    join(root, 'run', component, 'supervisor.json'),
    typeof state === 'string' ? state : JSON.stringify(state),
  );
}

describe('stack CPU accounting', () => {
  it('finds the running supervised processes of a stack and names a stack that is not up', () => {
    supervised('cassandra', { childPid: 101, status: 'running' });
    supervised('kafka', { childPid: 102, status: 'backoff' });
    supervised('nginx', '{ not json');
    mkdirSync(join(root, 'run', 'pki'), { recursive: true });
    // A component of two processes, one directory each (the collector and its front).
    supervised('otel-collector/collector', { childPid: 103, status: 'running' });
    supervised('otel-collector/front', { childPid: 104, status: 'running' });
    expect(stackProcesses(join(root, 'run'))).toEqual([
      { component: 'cassandra', pid: 101 },
      { component: 'otel-collector/collector', pid: 103 },
      { component: 'otel-collector/front', pid: 104 },
    ]);
    expect(() => stackProcesses(join(root, 'absent'))).toThrow('is the stack up?');
    mkdirSync(join(root, 'empty'));
    expect(() => stackProcesses(join(root, 'empty'))).toThrow('no running process');
  });

  it('reads the parent pid after a comm with spaces', () => {
    expect(ppidFromStat('4242 (java (x) y) S 17 4242 4242 0')).toBe(17);
  });

  it("counts a component's descendants too, as a launcher script's JVM", async () => {
    const child = spawn('sh', ['-c', 'sleep 5 & wait'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const tree = processTree(child.pid as number);
      expect(tree[0]).toBe(child.pid);
      expect(tree.length).toBeGreaterThanOrEqual(2); // sh and its sleep
      const snap = snapshot([{ component: 'x', pid: child.pid as number }]);
      expect(snap.get('x')?.size).toBe(tree.length);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('divides each component by the requests and renders the ceiling on the cores', () => {
    const before = new Map([
      ['cassandra', new Map([[1, 10]])],
      ['nginx', new Map([[2, 1]])],
    ]);
    const after = new Map([
      // a process that appeared during the run counts from zero
      [
        'cassandra',
        new Map([
          [1, 16],
          [3, 1],
        ]),
      ],
      ['nginx', new Map([[2, 2]])],
    ]);
    const rows = cpuPerRequest(before, after, 1000);
    expect(rows).toEqual([
      { component: 'cassandra', cpuSeconds: 7, msPerRequest: 7 },
      { component: 'nginx', cpuSeconds: 1, msPerRequest: 1 },
    ]);
    const md = renderCpuMd(rows, { requests: 1000, wallSeconds: 10, cores: 2, k6CpuSeconds: 2 });
    expect(md).toContain('| cassandra | 7.00 | 7.000 | 70 % |');
    // 2 cores = 2000 CPU ms/s over 8 (stack) + 2 (k6) ms per request
    expect(md).toContain('**200 requests/s**');
    expect(() => cpuPerRequest(before, after, 0)).toThrow('0 requests');
  });

  it('wraps a run: a busy component shows up in the report, and a stack that is not up skips accounting', async () => {
    // A component that burns CPU for about half a second during the "run".
    const busy = spawn('sh', ['-c', 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 5'], {
      stdio: 'ignore',
    });
    try {
      const runDir = join(root, 'wrapped', 'run');
      mkdirSync(join(runDir, 'busy'), { recursive: true });
      writeFileSync(
        join(runDir, 'busy', 'supervisor.json'),
        JSON.stringify({ childPid: busy.pid, status: 'running' }),
      );
      const reportDir = join(root, 'wrapped', 'report');
      mkdirSync(reportDir, { recursive: true });
      const r = await withStackCpu(runDir, async () => {
        await new Promise((res) => setTimeout(res, 1_500));
        writeFileSync(
          join(reportDir, 'summary.json'),
          JSON.stringify({ metrics: { http_reqs: { count: 100 } } }),
        );
        writeFileSync(join(reportDir, 'summary.md'), '# Load test\n');
        return { reportDir, report: { k6: { cpu: { average: 0.1, seconds: 1 } } }, exitCode: 0 };
      });
      expect(r.exitCode).toBe(0);
      const cpu = JSON.parse(readFileSync(join(reportDir, 'cpu.json'), 'utf8')) as {
        requests: number;
        rows: { component: string; cpuSeconds: number; msPerRequest: number }[];
      };
      expect(cpu.requests).toBe(100);
      expect(cpu.rows[0]?.component).toBe('busy');
      expect(cpu.rows[0]?.cpuSeconds).toBeGreaterThan(0.05);
      const md = readFileSync(join(reportDir, 'summary.md'), 'utf8');
      expect(md.startsWith('# Load test\n')).toBe(true);
      expect(md).toContain('## CPU per request, by component');
      expect(md).toMatch(/\| busy \| [\d.]+ \| [\d.]+ \|/);
    } finally {
      busy.kill('SIGKILL');
    }
    const lines: string[] = [];
    let ran = false;
    const reportDir = join(root, 'absent-report');
    await withStackCpu(
      join(root, 'no-stack', 'run'),
      async () => {
        ran = true;
        return { reportDir, report: { k6: { cpu: null } } };
      },
      (l) => lines.push(l),
    );
    expect(ran).toBe(true);
    expect(lines.join('\n')).toMatch(/CPU accounting skipped: .*is the stack up\?/);
    expect(existsSync(join(reportDir, 'cpu.md'))).toBe(false);
  });
});
