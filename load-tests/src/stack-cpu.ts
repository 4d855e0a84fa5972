/**
 * CPU accounting for a whole local stack: how many CPU milliseconds each component (its supervised
 * process and all its descendants) spends per HTTP request of a load run. Summed, that says how many
 * requests per second the machine can carry at best, whatever the latency: the capacity ceiling that
 * the budgets' rates must fit under.
 */
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { readState } from '@trellis/local/supervisor';
import { cpuSeconds } from './cpu.ts';

/** One supervised process of the stack, from `.trellis/<stack>/run/<component>/supervisor.json`. */
export interface StackProcess {
  component: string;
  pid: number;
}

/** The running processes of a stack, one per component directory with a live supervisor child. */
export function stackProcesses(runDir: string): StackProcess[] {
  const out: StackProcess[] = [];
  let dirs: string[];
  try {
    dirs = readdirSync(runDir).sort();
  } catch {
    throw new Error(`${runDir} does not exist: is the stack up? (./trellis up)`);
  }
  for (const component of dirs) {
    const state = readState(join(runDir, component, 'supervisor.json'));
    if (state?.status === 'running' && state.childPid) {
      out.push({ component, pid: state.childPid });
      continue;
    }
    // A component of several processes keeps one directory each below its own (the collector and
    // its front: `otel-collector/collector`, `otel-collector/front`).
    let subs: string[] = [];
    try {
      subs = readdirSync(join(runDir, component), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch {
      // a file, or gone
    }
    for (const sub of subs) {
      const s = readState(join(runDir, component, sub, 'supervisor.json'));
      if (s?.status === 'running' && s.childPid)
        out.push({ component: `${component}/${sub}`, pid: s.childPid });
    }
  }
  if (out.length === 0) throw new Error(`no running process under ${runDir}: is the stack up?`);
  return out;
}

/** Parent pid from the text of `/proc/<pid>/stat` (field 4, after the parenthesised comm). */
export function ppidFromStat(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every process's children, from one pass over `/proc`. */
export function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = ppidFromStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  return children;
}

/** `pid` and every live descendant (e.g. Keycloak's launcher script and its JVM). */
export function processTree(pid: number, children = childrenByParent()): number[] {
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** CPU seconds per component so far (processes that exited in between are not counted). */
export function snapshot(procs: readonly StackProcess[]): Map<string, Map<number, number>> {
  const snap = new Map<string, Map<number, number>>();
  const children = childrenByParent();
  for (const { component, pid } of procs) {
    const perPid = new Map<number, number>();
    for (const p of processTree(pid, children)) {
      const s = cpuSeconds(p);
      if (s !== null) perPid.set(p, s);
    }
    snap.set(component, perPid);
  }
  return snap;
}

/** CPU per component between two snapshots. */
export interface ComponentCpu {
  component: string;
  cpuSeconds: number;
  msPerRequest: number;
}

/** The difference of two snapshots, divided by the requests the run sent; largest first. */
export function cpuPerRequest(
  before: Map<string, Map<number, number>>,
  after: Map<string, Map<number, number>>,
  requests: number,
): ComponentCpu[] {
  if (!(requests > 0)) throw new Error(`a run with ${requests} requests says nothing about CPU`);
  const rows: ComponentCpu[] = [];
  for (const [component, perPid] of after) {
    let used = 0;
    for (const [pid, s] of perPid) used += s - (before.get(component)?.get(pid) ?? 0);
    rows.push({ component, cpuSeconds: used, msPerRequest: (1000 * used) / requests });
  }
  return rows.sort((a, b) => b.cpuSeconds - a.cpuSeconds);
}

/** Markdown table of the rows plus the capacity ceiling on `cores` cores. */
export function renderCpuMd(
  rows: readonly ComponentCpu[],
  o: { requests: number; wallSeconds: number; cores: number; k6CpuSeconds?: number },
): string {
  const total = rows.reduce((n, r) => n + r.msPerRequest, 0);
  const k6 = o.k6CpuSeconds !== undefined ? (1000 * o.k6CpuSeconds) / o.requests : undefined;
  const lines = [
    `| component | CPU s | CPU ms / request | share of one core |`,
    `| --- | ---: | ---: | ---: |`,
    ...rows.map(
      (r) =>
        `| ${r.component} | ${r.cpuSeconds.toFixed(2)} | ${r.msPerRequest.toFixed(3)} | ${((100 * r.cpuSeconds) / o.wallSeconds).toFixed(0)} % |`,
    ),
    `| **stack total** | ${rows.reduce((n, r) => n + r.cpuSeconds, 0).toFixed(2)} | **${total.toFixed(3)}** | |`,
    ...(k6 !== undefined
      ? [`| k6 (the load generator, measured phase only) | | ${k6.toFixed(3)} | |`]
      : []),
    '',
    `${o.requests} HTTP requests in ${o.wallSeconds.toFixed(0)} s. Ceiling on ${o.cores} cores, if every ` +
      `cycle went to the stack: **${Math.floor((o.cores * 1000) / (total + (k6 ?? 0)))} requests/s** of this mix` +
      (k6 !== undefined ? ' (stack + k6)' : '') +
      '.',
  ];
  return lines.join('\n') + '\n';
}

/** What {@link withStackCpu} needs of a finished run. */
export interface RunWithReport {
  reportDir: string;
  report: { k6: { cpu: { average: number; seconds: number } | null } };
}

/**
 * Run `run` (a load run against the stack whose processes live under `runDir`) with CPU accounting:
 * writes `cpu.md` and `cpu.json` into the run's report and appends the table to its `summary.md`.
 * Accounting is best effort: when the stack's processes cannot be read, the run goes on and `log`
 * says why.
 */
export async function withStackCpu<T extends RunWithReport>(
  runDir: string,
  run: () => Promise<T>,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<T> {
  let procs: StackProcess[];
  try {
    procs = stackProcesses(runDir);
  } catch (err) {
    log(`CPU accounting skipped: ${(err as Error).message}`);
    return run();
  }
  const before = snapshot(procs);
  const t0 = performance.now();
  const r = await run();
  const wallSeconds = (performance.now() - t0) / 1000;
  const after = snapshot(procs);
  try {
    const summary = JSON.parse(readFileSync(join(r.reportDir, 'summary.json'), 'utf8')) as {
      metrics: Record<string, { count?: number }>;
    };
    const requests = summary.metrics['http_reqs']?.count ?? 0;
    const rows = cpuPerRequest(before, after, requests);
    const k6 = r.report.k6.cpu;
    const md = renderCpuMd(rows, {
      requests,
      wallSeconds,
      cores: cpus().length,
      ...(k6 ? { k6CpuSeconds: k6.average * k6.seconds } : {}),
    });
    writeFileSync(join(r.reportDir, 'cpu.md'), `# CPU per request\n\n${md}`);
    writeFileSync(
      join(r.reportDir, 'cpu.json'),
      JSON.stringify({ requests, wallSeconds, rows }, null, 2),
    );
    appendFileSync(
      join(r.reportDir, 'summary.md'),
      `\n## CPU per request, by component\n\nEach supervised process of the stack and its children, ` +
        `read from /proc before and after the whole run (connect phase and set-up included). ` +
        `Background work counts too (a young JVM's JIT compiler, idle spinning), so at a low rate or right ` +
        `after \`up\` this overstates what a request costs; docs/performance.md compares rates.\n\n${md}`,
    );
  } catch (err) {
    log(`CPU accounting skipped: ${(err as Error).message}`);
  }
  return r;
}
