/**
 * The A/B gate run: every arm of an {@link AbStack} loaded block by block in the interleaved order
 * of {@link planRounds}, one k6 process for the whole schedule (one scenario per block; a k6 start
 * per block would cost more than a short block measures), CPU read from /proc at each block
 * boundary, then one verdict per comparison (baseline against each candidate) from the gate library.
 *
 * Per block and arm, every figure is relative to something measured in the same block:
 * - `traversal`: the median over the block of (sidecar time − floor time) per iteration, ms: what
 *   the Envoy traversal costs beyond a bare mTLS TCP proxy hop in front of the same app;
 * - `cpu:sidecar`, `cpu:app`: the component's CPU time over the block (all threads, ns from
 *   schedstat) divided by the sidecar requests of the block, CPU-ms per request. The app also
 *   serves the floor's request of each iteration, for every arm alike.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { k6Env } from '@trellis/local/toolchain';
import { cpuNanos } from '../cpu.ts';
import { judgeBlocks, type GateMetric, type GateVerdict } from '../gate/compare.ts';
import { comparisonPlan, planRounds, type RoundPlan } from '../gate/plan.ts';
import { median } from '../gate/stats.ts';
import { reportDirFor } from '../run.ts';
import { processTree } from '../stack-cpu.ts';
import type { AbK6Plan } from './k6-plan.ts';
import { renderAbReport } from './report.ts';
import type { AbStack } from './stack.ts';

/** The k6 script of the gate run. */
export const GATE_K6_SCRIPT = resolve(import.meta.dirname, '..', '..', 'k6', 'gate.ts');

/** The metrics the gate judges, with their minimum effects. */
export const AB_METRICS: readonly GateMetric[] = [
  {
    key: 'traversal',
    label: 'sidecar traversal − floor',
    unit: 'ms',
    // Below 0.25 ms a shift is within what a busy 2-core runner moves a block median by.
    minShift: 0.25,
    minRelativeShift: 0.3,
  },
  {
    key: 'cpu:sidecar',
    label: 'sidecar Envoy CPU per request',
    unit: 'CPU-ms/req',
    minShift: 0.02,
    minRelativeShift: 0.3,
  },
  {
    key: 'cpu:app',
    label: 'app CPU per request',
    unit: 'CPU-ms/req',
    minShift: 0.02,
    minRelativeShift: 0.3,
  },
];

/** One comparison: a candidate arm judged against a baseline arm. */
export interface AbComparison {
  baseline: string;
  candidate: string;
}

/** Options of {@link runAb}. */
export interface RunAbOptions {
  stack: AbStack;
  comparisons: readonly AbComparison[];
  reportsDir: string;
  /** Judged rounds (blocks per arm). @default 6 */
  rounds?: number;
  /** @default 1 */
  warmupRounds?: number;
  /** @default 2 */
  blockS?: number;
  /** @default 0.5 */
  gapS?: number;
  /** Iterations per second in a block (each is two requests: sidecar and floor). @default 100 */
  rate?: number;
  /** @default 1 */
  seed?: number;
  /** @default AB_METRICS */
  metrics?: readonly GateMetric[];
  /** The command line, for the report. */
  command?: string;
  log?: (line: string) => void;
}

/** One block's figures, as measured. */
export interface AbBlock {
  index: number;
  round: number;
  arm: string;
  warmup: boolean;
  /** Sidecar requests that, with their floor request, both answered 200. */
  iterations: number;
  sidecarMedianMs: number;
  floorMedianMs: number;
  /** Median of the per-iteration differences. */
  traversalMs: number;
  cpuSidecarMsPerReq: number;
  cpuAppMsPerReq: number;
  /**
   * The floor Envoy's CPU over the block per floor request (only the block's arm loads it): the
   * cost of the bare mTLS hop, for scale; not judged.
   */
  cpuFloorMsPerReq: number;
}

/** What {@link runAb} returns (and writes as `gate.json`). */
export interface AbResult {
  outcome: 'pass' | 'fail' | 'inconclusive';
  plan: RoundPlan;
  rate: number;
  blocks: AbBlock[];
  verdicts: { comparison: AbComparison; verdict: GateVerdict }[];
  k6ExitCode: number;
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: { cpu: string; cores: number; memGiB: number; kernel: string };
  loadAverage: { start: number[]; end: number[] };
  reportDir: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function treeCpuNs(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) ns += cpuNanos(p) ?? 0;
  return ns;
}

interface CpuSnapshot {
  arms: Map<string, { sidecar: number; app: number }>;
  floor: number;
}

/** CPU ns of every arm's sidecar and app, and of the floor, now. */
function snapshot(stack: AbStack): CpuSnapshot {
  return {
    arms: new Map(
      stack.arms.map((a) => [
        a.name,
        { sidecar: treeCpuNs(a.pids.sidecar), app: treeCpuNs(a.pids.app) },
      ]),
    ),
    floor: treeCpuNs(stack.floorPid),
  };
}

function checkOptions(o: RunAbOptions): void {
  const names = o.stack.arms.map((a) => a.name);
  if (o.comparisons.length === 0) throw new Error('comparisons: name at least one');
  o.comparisons.forEach((c, i) => {
    for (const f of ['baseline', 'candidate'] as const)
      if (!names.includes(c[f])) throw new Error(`comparisons[${i}].${f}: no arm '${c[f]}'`);
  });
  const rate = o.rate ?? 100;
  if (!(Number.isInteger(rate) && rate > 0 && rate <= 2000))
    throw new Error(`rate: ${rate} must be a whole number of iterations per second, 1–2000`);
}

/** Run the schedule, judge every comparison, write `gate.json` and `gate.md`. */
export async function runAb(o: RunAbOptions): Promise<AbResult> {
  checkOptions(o);
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rate = o.rate ?? 100;
  const plan = planRounds({
    arms: o.stack.arms.map((a) => a.name),
    rounds: o.rounds ?? 6,
    warmupRounds: o.warmupRounds ?? 1,
    blockS: o.blockS ?? 2,
    gapS: o.gapS ?? 0.5,
    seed: o.seed ?? 1,
  });
  const metrics = o.metrics ?? AB_METRICS;
  const reportDir = reportDirFor(o.reportsDir);
  const scratch = mkdtempSync(join(tmpdir(), 'trellis-gate-'));
  const snaps: (CpuSnapshot | undefined)[] = [];
  const timers: NodeJS.Timeout[] = [];
  let started = false;
  const server: Server = createServer((req, res) => {
    if (req.url === '/mark/start' && !started) {
      started = true;
      const t0 = performance.now();
      // A snapshot in the middle of the gap before each block, and one after the last: block i's
      // CPU is snapshot i+1 − snapshot i (the arms that idle spend next to nothing in the gaps).
      const at = [
        ...plan.blocks.map((b) => Math.max(0, b.startS - plan.gapS / 2)),
        plan.totalS + plan.gapS / 2,
      ];
      at.forEach((s, k) => {
        const ms = t0 + s * 1000 - performance.now();
        timers.push(setTimeout(() => (snaps[k] = snapshot(o.stack)), Math.max(0, ms)));
      });
    }
    res.writeHead(req.url === '/mark/start' ? 204 : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const controlUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const scenarios: Record<string, unknown> = {};
    const vus = Math.max(2, Math.ceil(rate / 100));
    for (const b of plan.blocks)
      scenarios[`block_${b.index}`] = {
        executor: 'constant-arrival-rate',
        rate,
        timeUnit: '1s',
        duration: `${b.durationS}s`,
        startTime: `${b.startS}s`,
        preAllocatedVUs: vus,
        maxVUs: vus * 10,
        gracefulStop: '1s',
        exec: 'block',
        env: { TRELLIS_GATE_BLOCK: String(b.index) },
        tags: { block: String(b.index), arm: b.arm },
      };
    const k6Plan: AbK6Plan = {
      version: 1,
      tokenUrl: o.stack.tokenUrl,
      controlUrl,
      payloadHeader: o.stack.payloadHeader,
      clientCert: { ...o.stack.clientCert, domains: ['127.0.0.1'] },
      arms: o.stack.arms.map((a) => ({
        name: a.name,
        sidecarUrl: a.sidecarUrl,
        floorUrl: a.floorUrl,
      })),
      blocks: plan.blocks.map((b) => ({ index: b.index, arm: b.arm })),
      options: {
        scenarios,
        // The sidecars' and the floor's certificates name only their SPIFFE ID (no IP SAN): no HTTPS
        // client can verify them against 127.0.0.1 (as the load test's sidecar path, ADR 0007).
        insecureSkipTLSVerify: true,
        summaryTrendStats: ['med', 'count', 'avg', 'p(90)'],
        discardResponseBodies: true,
      },
    };
    const planFile = join(reportDir, 'gate-plan.json');
    writeFileSync(planFile, JSON.stringify(k6Plan, null, 2));
    const resultFile = join(scratch, 'result.json');
    const { bin, env: baseEnv } = await k6Env();
    const startedAt = new Date();
    const loadStart = loadavg();
    log(
      `[gate] ${plan.arms.join(', ')}: ${plan.rounds} judged + ${plan.warmupRounds} warm-up rounds of ${plan.blockS} s blocks at ${rate} it/s (${plan.totalS.toFixed(0)} s); report in ${reportDir}`,
    );
    const child = spawn(
      bin,
      ['run', '--no-color', '--quiet', '--address=', '--no-usage-report', GATE_K6_SCRIPT],
      {
        env: {
          ...baseEnv,
          TRELLIS_GATE_PLAN: planFile,
          TRELLIS_GATE_RESULT: resultFile,
          TRELLIS_TOKEN_FORM: new URLSearchParams(o.stack.tokenForm).toString(),
          SSL_CERT_FILE: resolve(o.stack.trustBundle),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let k6Out = '';
    child.stdout.on('data', (b: Buffer) => (k6Out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (k6Out += b.toString()));
    const limitMs = (plan.totalS + 120) * 1000;
    const k6ExitCode = await new Promise<number>((res) => {
      const timer = setTimeout(() => {
        log(`[gate] k6 still running after ${limitMs / 1000} s: stopping it`);
        child.kill('SIGKILL');
      }, limitMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        k6Out += `could not run k6: ${err.message}\n`;
        res(1);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        res(code ?? 1);
      });
    });
    writeFileSync(join(reportDir, 'k6.log'), k6Out);
    // The last snapshot is due half a gap after the schedule's end.
    for (let i = 0; i < 50 && snaps[plan.blocks.length] === undefined && started; i++)
      await sleep(100);
    if (k6ExitCode !== 0) throw new Error(`k6 exited ${k6ExitCode}:\n${k6Out.slice(-2000)}`);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as {
      metrics: Record<string, Record<string, number>>;
    };
    const m = result.metrics;
    const blocks: AbBlock[] = plan.blocks.map((b, k) => {
      const before = snaps[k]?.arms.get(b.arm);
      const after = snaps[k + 1]?.arms.get(b.arm);
      const floorNs = (snaps[k + 1]?.floor ?? 0) - (snaps[k]?.floor ?? 0);
      const d = m[`gate_diff_${b.index}`];
      const n = d?.count ?? 0;
      if (!before || !after) throw new Error(`block ${b.index}: no CPU snapshot around it`);
      if (!d || n === 0)
        throw new Error(`block ${b.index} (arm ${b.arm}): no successful iteration`);
      return {
        index: b.index,
        round: b.round,
        arm: b.arm,
        warmup: b.warmup,
        iterations: n,
        sidecarMedianMs: m[`gate_sidecar_${b.index}`]?.med ?? Number.NaN,
        floorMedianMs: m[`gate_floor_${b.index}`]?.med ?? Number.NaN,
        traversalMs: d.med ?? Number.NaN,
        cpuSidecarMsPerReq: (after.sidecar - before.sidecar) / 1e6 / n,
        cpuAppMsPerReq: (after.app - before.app) / 1e6 / n,
        cpuFloorMsPerReq: floorNs / 1e6 / n,
      };
    });
    const failures = m.gate_failures?.count ?? 0;
    if (failures > 0)
      throw new Error(
        `${failures} iterations had a request that did not answer 200 (see ${join(reportDir, 'k6.log')})`,
      );
    const observations = blocks.map((b) => ({
      block: b.index,
      values: {
        traversal: b.traversalMs,
        'cpu:sidecar': b.cpuSidecarMsPerReq,
        'cpu:app': b.cpuAppMsPerReq,
      },
    }));
    const verdicts = o.comparisons.map((c) => {
      const cp = comparisonPlan(plan, c.baseline, c.candidate);
      const idx = new Set(cp.blocks.map((b) => b.index));
      return {
        comparison: c,
        verdict: judgeBlocks(
          cp,
          observations.filter((ob) => idx.has(ob.block)),
          metrics,
        ),
      };
    });
    const outcome = verdicts.some((v) => v.verdict.outcome === 'fail')
      ? 'fail'
      : verdicts.some((v) => v.verdict.outcome === 'inconclusive')
        ? 'inconclusive'
        : 'pass';
    const c = cpus();
    const r: AbResult = {
      outcome,
      plan,
      rate,
      blocks,
      verdicts,
      k6ExitCode,
      startedAt: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
      finishedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      command: o.command ?? 'runAb()',
      machine: {
        cpu: c[0]?.model.trim() ?? 'unknown CPU',
        cores: c.length,
        memGiB: Math.round(totalmem() / 2 ** 30),
        kernel: `Linux ${release()}`,
      },
      loadAverage: { start: loadStart, end: loadavg() },
      reportDir,
    };
    writeFileSync(join(reportDir, 'gate.json'), JSON.stringify(r, null, 2));
    writeFileSync(join(reportDir, 'gate.md'), renderAbReport(r, o.stack));
    log(`[gate] ${outcome.toUpperCase()}; report: ${join(reportDir, 'gate.md')}`);
    return r;
  } finally {
    for (const t of timers) clearTimeout(t);
    rmSync(scratch, { recursive: true, force: true });
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** The median of the baseline arm's blocks of one figure (for the report's "vs peers" table). */
export function armMedian(r: AbResult, arm: string, f: (b: AbBlock) => number): number {
  return median(r.blocks.filter((b) => b.arm === arm && !b.warmup).map(f));
}
