/** The A/B gate run's pure parts: arms, the injected fault, the floor's bootstrap, CPU, the report. */
import { describe, expect, it } from 'vitest';
import { GATE_ARMS, GATE_COMPARISONS } from '../src/ab/arms.ts';
import { renderAbReport, PEER_FIGURES } from '../src/ab/report.ts';
import type { AbBlock, AbResult } from '../src/ab/run.ts';
import {
  checkArms,
  floorBootstrap,
  inboundHttpListener,
  withFaultDelay,
  type Bootstrap,
} from '../src/ab/stack.ts';
import { selfCheckProblems } from '../src/ab/self-check.ts';
import { cpuNanos } from '../src/cpu.ts';
import { judgeBlocks } from '../src/gate/compare.ts';
import { comparisonPlan, planRounds } from '../src/gate/plan.ts';
import { AB_METRICS } from '../src/ab/run.ts';

/** The shape of a compiled sidecar bootstrap, reduced to what the gate edits. */
function sidecar(): Bootstrap {
  return {
    node: { id: 'orders-api', cluster: 'orders-api' },
    static_resources: {
      listeners: [
        {
          name: 'inbound_http',
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  require_client_certificate: true,
                  common_tls_context: { alpn_protocols: ['h2', 'http/1.1'], tls_params: {} },
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    http_filters: [
                      { name: 'envoy.filters.http.jwt_authn' },
                      { name: 'envoy.filters.http.rbac' },
                      { name: 'envoy.filters.http.router' },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [],
    },
  };
}

const filterNames = (b: Bootstrap): string[] =>
  (
    inboundHttpListener(b).filter_chains[0]?.filters[0]?.typed_config.http_filters as {
      name: string;
    }[]
  ).map((f) => f.name);

describe('withFaultDelay', () => {
  it('inserts the HTTP fault filter with a fixed delay at 100 % just before the router, on a copy', () => {
    const b = sidecar();
    const d = withFaultDelay(b, 2);
    expect(filterNames(d)).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac',
      'envoy.filters.http.fault',
      'envoy.filters.http.router',
    ]);
    expect(filterNames(b)).not.toContain('envoy.filters.http.fault');
    const f = (
      inboundHttpListener(d).filter_chains[0]?.filters[0]?.typed_config.http_filters as {
        typed_config?: unknown;
      }[]
    )[2];
    expect(f?.typed_config).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: { fixed_delay: '0.002s', percentage: { numerator: 100, denominator: 'HUNDRED' } },
    });
  });

  it('refuses a delay that is not above zero, and a bootstrap without the listener or router', () => {
    expect(() => withFaultDelay(sidecar(), 0)).toThrow(/^delay:/);
    expect(() => withFaultDelay({ static_resources: { listeners: [] } }, 2)).toThrow(
      /no inbound_http listener/,
    );
    const noRouter = sidecar();
    filterNames(noRouter);
    (
      inboundHttpListener(noRouter).filter_chains[0]?.filters[0]?.typed_config as {
        http_filters: unknown[];
      }
    ).http_filters.pop();
    expect(() => withFaultDelay(noRouter, 2)).toThrow(/no router filter/);
  });
});

describe('floorBootstrap', () => {
  it("keeps each arm's downstream mTLS, drops ALPN, and proxies TCP to that arm's app", () => {
    const f = floorBootstrap([
      { name: 'A', bootstrap: sidecar(), floorPort: 7001, appPort: 8001 },
      { name: 'B', bootstrap: sidecar(), floorPort: 7002, appPort: 8002 },
    ]) as {
      node: { id: string };
      static_resources: {
        listeners: {
          name: string;
          address: unknown;
          filter_chains: {
            transport_socket: { typed_config: Record<string, unknown> };
            filters: { name: string; typed_config: Record<string, unknown> }[];
          }[];
        }[];
        clusters: { name: string; load_assignment: unknown }[];
      };
    };
    expect(f.node.id).toBe('gate-floor');
    const [a, b] = f.static_resources.listeners;
    expect(a?.name).toBe('floor_A');
    expect(a?.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 7001 } });
    const tls = a?.filter_chains[0]?.transport_socket.typed_config;
    expect(tls?.require_client_certificate).toBe(true);
    expect(tls?.common_tls_context).toEqual({ tls_params: {} });
    expect(a?.filter_chains[0]?.filters).toEqual([
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
          stat_prefix: 'floor_A',
          cluster: 'app_A',
        },
      },
    ]);
    expect(b?.filter_chains[0]?.filters[0]?.typed_config.cluster).toBe('app_B');
    expect(f.static_resources.clusters.map((c) => c.name)).toEqual(['app_A', 'app_B']);
    expect(JSON.stringify(f.static_resources.clusters[1]?.load_assignment)).toContain('8002');
  });
});

describe('checkArms and the self-check arms', () => {
  it('accepts the gate arms and refuses bad ones, naming the field', () => {
    expect(() => checkArms(GATE_ARMS)).not.toThrow();
    expect(() => checkArms([{ name: 'A' }])).toThrow(/^arms: /);
    expect(() => checkArms([{ name: 'A' }, { name: 'A' }])).toThrow(/^arms\[1\]\.name: 'A'/);
    expect(() => checkArms([{ name: 'A' }, { name: 'a b' }])).toThrow(/^arms\[1\]\.name:/);
    expect(() => checkArms([{ name: 'A' }, { name: 'B', burnUs: -1 }])).toThrow(
      /^arms\[1\]\.burnUs:/,
    );
    for (const c of GATE_COMPARISONS)
      for (const n of [c.baseline, c.candidate]) expect(GATE_ARMS.map((a) => a.name)).toContain(n);
  });
});

describe('cpuNanos', () => {
  it("reads this process's CPU from schedstat, growing with work, and null for no process", () => {
    const a = cpuNanos(process.pid);
    let x = 0;
    for (let i = 0; i < 5e6; i++) x += i % 7;
    const b = cpuNanos(process.pid);
    expect(x).toBeGreaterThan(0);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a as number);
    expect(cpuNanos(2 ** 30)).toBeNull();
  });
});

describe('renderAbReport', () => {
  it('writes the verdict of each comparison, the vs-peers table with sources, and every block', () => {
    const plan = planRounds({ arms: ['A', 'B'], rounds: 5, blockS: 2, gapS: 0.5 });
    const blocks: AbBlock[] = plan.blocks.map((b) => ({
      index: b.index,
      round: b.round,
      arm: b.arm,
      warmup: b.warmup,
      iterations: 200,
      sidecarMedianMs: b.arm === 'B' ? 3 : 1,
      floorMedianMs: 0.5,
      traversalMs: b.arm === 'B' ? 2.5 : 0.5,
      cpuSidecarMsPerReq: 0.6,
      cpuAppMsPerReq: 0.5,
      cpuFloorMsPerReq: 0.25,
    }));
    const cp = comparisonPlan(plan, 'A', 'B');
    const verdict = judgeBlocks(
      cp,
      blocks.map((b) => ({
        block: b.index,
        values: {
          traversal: b.traversalMs + b.round * 0.001,
          'cpu:sidecar': b.cpuSidecarMsPerReq + b.index * 0.001,
          'cpu:app': b.cpuAppMsPerReq + b.index * 0.001,
        },
      })),
      AB_METRICS,
    );
    const r: AbResult = {
      outcome: 'fail',
      plan,
      rate: 100,
      blocks,
      verdicts: [{ comparison: { baseline: 'A', candidate: 'B' }, verdict }],
      k6ExitCode: 0,
      startedAt: '2026-12-06T18:00:00Z',
      finishedAt: '2026-12-06T18:01:00Z',
      command: 'test',
      machine: { cpu: 'CPU', cores: 2, memGiB: 24, kernel: 'Linux x' },
      loadAverage: { start: [1, 1, 1], end: [1, 1, 1] },
      reportDir: '/tmp/x',
    };
    const md = renderAbReport(r);
    expect(md).toContain('**FAIL: a candidate regressed against its baseline**');
    expect(md).toContain('## B against A');
    expect(md).toMatch(/\| sidecar traversal − floor \(ms\) \| 0\.5\d* \| 2\.5\d* \| \+2 \|/);
    expect(md).toContain('**REGRESSION**');
    expect(md).toContain(
      '| **Trellis** sidecar (arm A, this run) | 1 ms median through the sidecar, 0.5 ms over the floor | 0.6 CPU-ms (sidecar Envoy)',
    );
    expect(md).toContain(
      '| bare mTLS TCP proxy (floor, this run) | 0.5 ms median through the floor | 0.25 CPU-ms (floor Envoy, per floor request)',
    );
    for (const p of PEER_FIGURES) expect(md).toContain(p.source);
    expect(md.match(/^\| \d+ \| \d+ \| [AB] \|/gm)).toHaveLength(plan.blocks.length);
  });
});

describe('selfCheckProblems (./trellis load --scenario gate)', () => {
  const m = (key: string, outcome: string) => ({ metric: { key }, outcome });
  const v = (candidate: string, outcome: string, metrics: ReturnType<typeof m>[]) => ({
    comparison: { baseline: 'A', candidate },
    verdict: { outcome, metrics },
  });
  it('is empty when A/A passes and each injected regression fails on its own metric', () => {
    const ok = [
      v('A2', 'pass', [m('traversal', 'no change')]),
      v('delay', 'fail', [m('traversal', 'regression')]),
      v('burn', 'fail', [m('cpu:app', 'regression')]),
    ];
    expect(selfCheckProblems({ verdicts: ok } as never)).toEqual([]);
  });
  it('names every comparison that did not behave', () => {
    const bad = [
      v('A2', 'fail', [m('traversal', 'regression')]),
      v('delay', 'pass', [m('traversal', 'no change')]),
      v('burn', 'fail', [m('cpu:app', 'no change'), m('cpu:sidecar', 'regression')]),
    ];
    expect(selfCheckProblems({ verdicts: bad } as never)).toEqual([
      'A2 against A: fail, expected pass',
      'delay against A: pass, expected fail',
      'burn against A: failed, but not on cpu:app',
    ]);
  });
});
