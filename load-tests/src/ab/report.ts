/**
 * The A/B gate run's report (`gate.md`): the verdict of every comparison (the gate library's table),
 * the blocks as measured, and the "vs peers" table: Trellis's sidecar traversal over the floor
 * measured in this run beside the figures Istio and Linkerd publish, each with its conditions and
 * source. The peers' figures are theirs, measured elsewhere on other machines and loads: they are
 * shown for scale, never compared by the gate.
 */
import { formatGateTable } from '../gate/format.ts';
import { comparisonPlan } from '../gate/plan.ts';
import { median } from '../gate/stats.ts';
import type { AbBlock, AbResult } from './run.ts';
import type { AbStack } from './stack.ts';

/** A published figure of another mesh, with where and how it was measured. */
export interface PeerFigure {
  mesh: string;
  figure: string;
  conditions: string;
  source: string;
}

/** What Istio and Linkerd publish (quoted, with the page; nothing here is measured by Trellis). */
export const PEER_FIGURES: readonly PeerFigure[] = [
  {
    mesh: 'Istio 1.24 sidecar (Envoy)',
    figure: '0.20 vCPU and 60 MB per 1,000 rps, i.e. 0.20 CPU-ms per request',
    conditions: 'one sidecar with 2 worker threads, 1,000 HTTP rps, 1 KB payload',
    source: 'https://istio.io/latest/docs/ops/deployment/performance-and-scalability/',
  },
  {
    mesh: 'Istio 1.13.4 sidecar (Envoy)',
    figure: '0.35 vCPU per 1,000 rps; adds 2.65 ms to the p90 latency',
    conditions:
      '1,000 services, 2,000 sidecars, 70,000 mesh-wide rps; latency for client and server sidecars together',
    source: 'https://istio.io/v1.13/docs/ops/deployment/performance-and-scalability/',
  },
  {
    mesh: 'Linkerd 2.11 vs Istio 1.12',
    figure:
      'Linkerd "almost an order of magnitude less additional tail latency than Istio" at the highest load tested (per-rate tables in the post)',
    conditions:
      'Kinvolk benchmark harness, emojivoto app, 20 / 200 / 2,000 rps, latency from the client, vs no mesh',
    source: 'https://linkerd.io/2021/11/29/linkerd-vs-istio-benchmarks-2021/',
  },
];

function num(x: number, digits = 3): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(digits))) : 'n/a';
}

function judged(r: AbResult, arm: string): AbBlock[] {
  return r.blocks.filter((b) => b.arm === arm && !b.warmup);
}

/** The "vs peers" table, from the run's baseline arm. */
export function renderPeersTable(r: AbResult, baseline: string): string {
  const bs = judged(r, baseline);
  const med = (f: (b: AbBlock) => number) => median(bs.map(f));
  const L = [
    '| mesh | traversal latency | CPU per request | conditions | source |',
    '|---|---|---|---|---|',
    `| **Trellis** sidecar (arm ${baseline}, this run) | ${num(med((b) => b.sidecarMedianMs))} ms median through the sidecar, ${num(med((b) => b.traversalMs))} ms over the floor | ${num(med((b) => b.cpuSidecarMsPerReq))} CPU-ms (sidecar Envoy) | ${r.rate} rps per block, 1 worker, keep-alive mTLS, GET with JWT (jwt_authn, RBAC, local rate limit); ${r.machine.cores}-core ${r.machine.cpu} shared with k6 and the app | this report |`,
    `| bare mTLS TCP proxy (floor, this run) | ${num(med((b) => b.floorMedianMs))} ms median through the floor | ${num(med((b) => b.cpuFloorMsPerReq))} CPU-ms (floor Envoy, per floor request) | the same TLS, SVID and app; no HTTP processing | this report |`,
    ...PEER_FIGURES.map((p) => `| ${p.mesh} | ${p.figure} | | ${p.conditions} | ${p.source} |`),
    '',
    'The peers publish what they measured on their own machines and loads; the rows are for scale only. ' +
      'Istio’s CPU figure is per request through one proxy, as is Trellis’s; its latency figures are for a request ' +
      'through two proxies (client and server side).',
    '',
  ];
  return L.join('\n');
}

/** The whole `gate.md`. */
export function renderAbReport(r: AbResult, stack?: Pick<AbStack, 'arms'>): string {
  const head =
    r.outcome === 'fail'
      ? '**FAIL: a candidate regressed against its baseline**'
      : r.outcome === 'pass'
        ? '**PASS: no candidate regressed**'
        : '**INCONCLUSIVE: some metric could not be judged**';
  const L: string[] = [
    '# Regression gate (interleaved A/B blocks)',
    '',
    head,
    '',
    `| | |`,
    `|---|---|`,
    `| command | \`${r.command}\` |`,
    `| started / finished (UTC) | ${r.startedAt} / ${r.finishedAt} |`,
    `| machine | ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGiB} GiB, ${r.machine.kernel} |`,
    `| load average (1/5/15 min) at start / end | ${r.loadAverage.start.map((x) => x.toFixed(2)).join(' ')} / ${r.loadAverage.end.map((x) => x.toFixed(2)).join(' ')} |`,
    `| schedule | arms ${r.plan.arms.join(', ')}; ${r.plan.rounds} judged + ${r.plan.warmupRounds} warm-up rounds, each arm once per round in a seeded random order (seed ${r.plan.seed}); ${r.plan.blockS} s blocks, ${r.plan.gapS} s gaps, ${r.rate} iterations/s (each a GET through the sidecar and one through the floor) |`,
    '',
  ];
  if (stack) {
    L.push('Arms:', '');
    for (const a of stack.arms) {
      const fault = JSON.stringify(a.bootstrap).includes('envoy.filters.http.fault');
      L.push(
        `- \`${a.name}\`: compiled sidecar${fault ? ' **plus the HTTP fault filter (fixed delay)**' : ''}; app${a.burnUs > 0 ? ` **spinning ${a.burnUs} µs of CPU per request**` : ''}`,
      );
    }
    L.push('');
  }
  for (const { comparison, verdict } of r.verdicts) {
    L.push(`## ${comparison.candidate} against ${comparison.baseline}`, '');
    L.push(
      formatGateTable(verdict, comparisonPlan(r.plan, comparison.baseline, comparison.candidate)),
    );
  }
  L.push('## Vs peers', '');
  L.push(renderPeersTable(r, r.verdicts[0]?.comparison.baseline ?? r.plan.arms[0] ?? ''));
  L.push(
    '## Blocks',
    '',
    'Per block: iterations with both requests answered 200; medians over the block; CPU from /proc (every thread, schedstat ns) between the middles of the gaps around the block, per sidecar request (the app also serves each iteration’s floor request); the floor Envoy’s per floor request (only the block’s arm loads it).',
    '',
    '| block | round | arm | judged | iterations | sidecar ms | floor ms | traversal − floor ms | sidecar CPU-ms/req | app CPU-ms/req | floor CPU-ms/req |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.blocks.map(
      (b) =>
        `| ${b.index} | ${b.round} | ${b.arm} | ${b.warmup ? 'warm-up' : 'yes'} | ${b.iterations} | ${num(b.sidecarMedianMs)} | ${num(b.floorMedianMs)} | ${num(b.traversalMs)} | ${num(b.cpuSidecarMsPerReq)} | ${num(b.cpuAppMsPerReq)} | ${num(b.cpuFloorMsPerReq)} |`,
    ),
    '',
  );
  return L.join('\n');
}
