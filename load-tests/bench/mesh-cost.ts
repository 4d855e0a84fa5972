/**
 * What an Envoy sidecar traversal costs, feature by feature: the A/B gate's stack (load-tests/src/ab)
 * with one arm per variant of the compiled orders-api sidecar (every arm with its access log on, as
 * the stack runs it), loaded in interleaved blocks in one run, each against the same bare mTLS floor.
 * Each variant is the compiled bootstrap with one edit (`VARIANTS`); the run judges every arm
 * against the first and prints, per arm, the medians over its judged blocks: sidecar CPU-ms per
 * request, traversal over the floor, and the ratio of the sidecar's latency to the floor's; then,
 * per arm over the whole run, each Envoy thread's CPU per request, user and system ticks, and the
 * sidecar's connection and request counters (docs/performance.md, "Mesh cost").
 *
 *   node load-tests/bench/mesh-cost.ts --arms before,after,... [--rounds 6] [--block 2] [--rate 100]
 *                                      [--seed 1] [--out reports/mesh-cost]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { armMedian, runAb } from '../src/ab/run.ts';
import { startAbStack, type ArmSpec } from '../src/ab/stack.ts';
import { VARIANTS } from './mesh-cost-variants.ts';

interface ThreadCpu {
  comm: string;
  ns: number;
  userTicks: number;
  sysTicks: number;
}

/** Per thread of `pid`: name, schedstat run time, utime and stime (proc(5)). */
function threads(pid: number): Map<string, ThreadCpu> {
  const out = new Map<string, ThreadCpu>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(tid, { comm, ns, userTicks: Number(rest[11]), sysTicks: Number(rest[12]) });
    } catch {
      // the thread exited
    }
  }
  return out;
}

const { values } = parseArgs({
  options: {
    arms: { type: 'string', default: 'before,after' },
    rounds: { type: 'string', default: '6' },
    block: { type: 'string', default: '2' },
    rate: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    out: {
      type: 'string',
      default: resolve(import.meta.dirname, '..', '..', 'reports', 'mesh-cost'),
    },
  },
});
const names = values.arms.split(',');
const arms: ArmSpec[] = names.map((name) => {
  if (!Object.hasOwn(VARIANTS, name))
    throw new Error(`--arms: no variant '${name}' (have ${Object.keys(VARIANTS).join(', ')})`);
  const envoy = VARIANTS[name];
  return envoy ? { name, envoy } : { name };
});
const root = mkdtempSync(join(tmpdir(), 'trellis-mesh-cost-'));
const stack = await startAbStack(root, arms, { accessLog: true });
try {
  const before = loadavg();
  const t0 = new Map(stack.arms.map((a) => [a.name, threads(a.pids.sidecar)]));
  const r = await runAb({
    stack,
    comparisons: names.slice(1).map((c) => ({ baseline: names[0] as string, candidate: c })),
    reportsDir: values.out,
    rounds: Number(values.rounds),
    blockS: Number(values.block),
    rate: Number(values.rate),
    seed: Number(values.seed),
    command: `node load-tests/bench/mesh-cost.ts ${process.argv.slice(2).join(' ')}`,
  });
  const f = (x: number) => x.toFixed(3);
  process.stdout.write(
    `load ${before.map((x) => x.toFixed(2)).join(' ')} -> ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; report ${r.reportDir}\n`,
  );
  process.stdout.write('arm: sidecar CPU-ms/req | floor CPU-ms/req | traversal ms | ratio\n');
  for (const a of names) {
    const side = armMedian(r, a, (b) => b.sidecarMedianMs);
    const fl = armMedian(r, a, (b) => b.floorMedianMs);
    process.stdout.write(
      `${a}: ${f(armMedian(r, a, (b) => b.cpuSidecarMsPerReq))} | ${f(armMedian(r, a, (b) => b.cpuFloorMsPerReq))} | ${f(armMedian(r, a, (b) => b.traversalMs))} | ${f(side / fl)}\n`,
    );
  }
  // Per arm, over the whole run (warm-up included): CPU per request by thread, user and system.
  for (const a of stack.arms) {
    const reqs = r.blocks.filter((b) => b.arm === a.name).reduce((n, b) => n + b.iterations, 0);
    const now = threads(a.pids.sidecar);
    const parts: string[] = [];
    let user = 0;
    let sys = 0;
    for (const [tid, t] of now) {
      const t0a = t0.get(a.name)?.get(tid);
      const d = t.ns - (t0a?.ns ?? 0);
      user += t.userTicks - (t0a?.userTicks ?? 0);
      sys += t.sysTicks - (t0a?.sysTicks ?? 0);
      if (d / 1e6 / reqs >= 0.001) parts.push(`${t.comm}:${f(d / 1e6 / reqs)}`);
    }
    process.stdout.write(
      `${a.name} threads (CPU-ms/req over ${reqs} req): ${parts.join(' ')}; user ${user} / sys ${sys} ticks\n`,
    );
    const stats = await (
      await fetch(
        `${a.sidecarAdminUrl}/stats?filter=${encodeURIComponent(
          '(downstream_cx_total|upstream_cx_total|downstream_rq_total|upstream_rq_total|downstream_cx_http[12]_total|handshake|jwks.*rq_total|ssl.session_reused)$',
        )}`,
      )
    ).text();
    process.stdout.write(
      `${a.name} stats: ${stats
        .trim()
        .split('\n')
        .filter((l) => !l.endsWith(': 0'))
        .join('; ')}\n`,
    );
  }
  for (const v of r.verdicts)
    process.stdout.write(
      `${v.comparison.candidate} vs ${v.comparison.baseline}: ${v.verdict.outcome} ${v.verdict.metrics
        .map((m) => `${m.metric.key}=${m.outcome}`)
        .join(' ')}\n`,
    );
} finally {
  await stack.stop();
  rmSync(root, { recursive: true, force: true });
}
