/**
 * The k6 plan of one run, built from the model's budgets (through `compileK6Thresholds`), a scenario
 * and a target. Pure: no I/O. Timeline (k6 scenario start times are fixed, so the phases are laid out
 * back to back; `gracefulStop: 0s` keeps them from overlapping, so k6 reuses the same VUs, and their
 * connections, from one phase to the next):
 *
 *   0 ── connect (per-vu-iterations, every VU once) ── warm-up (the load) ── measure (the load) ──▶
 *                                                      markStart ▲              markEnd ▲
 */
import { identityHeaders } from '@trellis/contracts';
import {
  compileK6Thresholds,
  type K6RouteTarget,
  type K6Threshold,
  type BoundModel,
} from '@trellis/policy';
import type { Scenario } from 'k6/options';
import type {
  K6Plan,
  MeshHop,
  MeshPath,
  PlanMesh,
  PlanRoute,
  Recipe,
  ScenarioName,
} from './plan-types.ts';
import { k6Duration, scenarioDefaults, SPIKE_FACTOR, type Mix } from './scenarios.ts';
import type { LoadTarget } from './target.ts';
import { renderThresholds, runThresholds, type ThresholdKey } from './thresholds.ts';

/** Counters the report reads for the measured phase (their thresholds always pass). */
export const REPORT_ONLY: readonly ThresholdKey[] = [
  { metric: 'http_reqs', tags: { phase: 'measure' } },
];

/** A threshold that always passes, so that k6 reports the sub-metric `k`. */
const reportOnly = (k: ThresholdKey): K6Threshold => ({
  ...k,
  statistic: 'count',
  comparison: '>=',
  value: 0,
});

/** The inputs of {@link buildPlan}; the optional numbers override the scenario's defaults. */
export interface PlanInput {
  model: BoundModel;
  scenario: ScenarioName;
  target: LoadTarget;
  /** The runner's control server, e.g. `http://127.0.0.1:40111`. */
  controlUrl: string;
  rps?: number;
  durationS?: number;
  warmupS?: number;
  meshRate?: number;
  /** Longest time the connect phase may take (seconds). @default 10 */
  connectS?: number;
  /** Orders created in setup() for reads. @default 50 */
  seedOrders?: number;
  /** Stop at the first broken budget. False: measure the whole duration (exit 99 all the same). @default true */
  abortOnFail?: boolean;
  /**
   * Judge by this environment of the model's `budgets.environments` (e.g. `ci`); its route budgets
   * also set the steady mix's weights. @default production budgets
   */
  environment?: string;
}

/** One route's share of the load. */
export interface RouteRate {
  route: PlanRoute;
  budget: K6RouteTarget;
  /** Requests per second in the measured phase (the base rate, for a spike). */
  rps: number;
}

/** What the report needs to know about the plan besides the k6 options. */
export interface PlanLayout {
  /** Seconds from the start of the scenarios until measuring starts. */
  measureStartS: number;
  measureS: number;
  warmupS: number;
  connectS: number;
  totalS: number;
  rates: RouteRate[];
  meshRate: number;
  /** VUs per scenario name, and their total. */
  vus: number;
  /** The thresholds of `options.thresholds`, as data (the report reads their metric and tags). */
  thresholds: K6Threshold[];
}

/** {@link buildPlan}'s result: the plan for k6, and its layout for the runner and the report. */
export interface BuiltPlan {
  plan: K6Plan;
  layout: PlanLayout;
}

/**
 * The request recipe for a route: the smoke service's `POST /orders` and `GET /orders/{id}`. A route
 * with a budget but no recipe is an error that names it, before anything runs.
 */
export function recipeFor(r: { route: string; method: string; path: string }): Recipe {
  if (r.method === 'POST' && r.path === '/orders') return 'create-order';
  if (r.method === 'GET' && /^\/orders\/\{[^/}]+\}$/.test(r.path)) return 'get-order';
  throw new Error(
    `route '${r.route}' (${r.method} ${r.path}) has a budget but load-tests has no request recipe ` +
      'for it: add one to load-tests/k6/load.ts and recipeFor() in load-tests/src/plan.ts',
  );
}

/** Per-route rates: `total` split by the mix; every route in the mix gets at least 1 rps. */
export function splitRate(total: number, routes: readonly RouteRate[], mix: Mix): RouteRate[] {
  const weight = (r: RouteRate): number =>
    mix === 'model' ? r.budget.rps : r.route.recipe === 'create-order' ? mix.write : mix.read;
  const sum = routes.reduce((s, r) => s + weight(r), 0);
  if (!(sum > 0)) throw new Error('the scenario mix gives every route a weight of zero');
  return routes.map((r) => ({
    ...r,
    rps: weight(r) > 0 ? Math.max(1, Math.round((total * weight(r)) / sum)) : 0,
  }));
}

/** VUs for an arrival rate: enough for 50 ms per request, plus two. */
export function vusFor(rps: number, requestsPerIteration = 1): number {
  return Math.ceil(rps * requestsPerIteration * 0.05) + 2;
}

/**
 * The mesh probe: the paths the target offers k6, and the hops between neighbours among them. With
 * a pod backend (`mesh.pod`) the direct path is left to the in-pod probe ({@link podProbePlan}).
 */
export function meshProbe(target: LoadTarget, readRoute: PlanRoute | undefined): PlanMesh | null {
  const m = target.mesh;
  if (!m || !readRoute) return null;
  const paths: MeshPath[] = [{ name: 'edge', url: target.ingressUrl, auth: 'bearer' }];
  if (m.ingressUrl) paths.push({ name: 'ingress', url: m.ingressUrl, auth: 'bearer' });
  if (m.sidecarUrl && m.clientCert)
    paths.push({ name: 'sidecar', url: m.sidecarUrl, auth: 'bearer' });
  // A pod backend's app listens inside its pod only: the direct path, and with it the sidecar's
  // hop, are measured there (pod-probe.ts); k6 keeps the paths it can reach.
  if (m.appUrl && m.pod === undefined)
    paths.push({
      name: 'direct',
      url: m.appUrl,
      auth: 'payload-header',
      ...(m.xfcc ? { headers: { [identityHeaders.clientCert]: m.xfcc } } : {}),
    });
  if (paths.length < 2) return null;
  const has = (n: string): boolean => paths.some((p) => p.name === n);
  const hops: MeshHop[] = [];
  if (has('sidecar') && has('direct'))
    hops.push({
      name: `${readRoute.name}-sidecar`,
      outer: 'sidecar',
      inner: 'direct',
      envoy: true,
    });
  if (has('ingress') && has('sidecar'))
    hops.push({ name: 'ingress-envoy', outer: 'ingress', inner: 'sidecar', envoy: true });
  if (has('edge') && has('ingress'))
    hops.push({ name: 'nginx', outer: 'edge', inner: 'ingress', envoy: false });
  // The ingress in a pod: its Envoy's listener is inside it, so nginx and that Envoy are one hop,
  // reported (not judged against the per-traversal budget, which it is two of).
  if (has('edge') && has('sidecar') && !has('ingress'))
    hops.push({ name: 'ingress-gateway', outer: 'edge', inner: 'sidecar', envoy: false });
  return {
    route: readRoute.name,
    paths,
    hops,
    payloadHeader: m.payloadHeader ?? identityHeaders.jwtPayload,
  };
}

function arrival(
  rps: number,
  durationS: number,
  startS: number,
  vus: number,
  tags: Record<string, string>,
  exec: string,
  env?: Record<string, string>,
): Scenario {
  return {
    executor: 'constant-arrival-rate',
    // Per minute, so that a fractional rate is still exact.
    rate: Math.round(rps * 60),
    timeUnit: '1m',
    duration: k6Duration(durationS),
    startTime: k6Duration(startS),
    gracefulStop: '0s',
    // No VUs beyond these: a new VU would open new connections mid-measurement. A saturated run shows
    // up as dropped_iterations in the report instead.
    preAllocatedVUs: vus,
    maxVUs: vus,
    exec,
    tags,
    ...(env ? { env } : {}),
  };
}

function spikeScenario(
  base: number,
  durationS: number,
  startS: number,
  vus: number,
  env: Record<string, string>,
): Scenario {
  const leg = k6Duration(durationS / 5);
  const perMin = (r: number): number => Math.round(r * 60);
  return {
    executor: 'ramping-arrival-rate',
    startRate: perMin(base),
    timeUnit: '1m',
    startTime: k6Duration(startS),
    gracefulStop: '0s',
    preAllocatedVUs: vus,
    maxVUs: vus,
    stages: [
      { target: perMin(base), duration: leg },
      { target: perMin(base * SPIKE_FACTOR), duration: leg },
      { target: perMin(base * SPIKE_FACTOR), duration: leg },
      { target: perMin(base), duration: leg },
      { target: perMin(base), duration: leg },
    ],
    exec: 'route',
    tags: { phase: 'measure' },
    env,
  };
}

/** Build the plan of one run. Throws naming the problem (no budgets, no recipe, bad numbers). */
export function buildPlan(input: PlanInput): BuiltPlan {
  const d = scenarioDefaults[input.scenario];
  const compiled = compileK6Thresholds(
    input.model,
    input.environment !== undefined ? { environment: input.environment } : {},
  );
  if (compiled.routes.length === 0)
    throw new Error('the model has no route with a budget: there is nothing to load-test');
  const total = input.rps ?? d.rps;
  const measureS = input.durationS ?? d.durationS;
  const warmupS = input.warmupS ?? d.warmupS;
  const connectS = input.connectS ?? 10;
  if (!(total > 0)) throw new Error(`--rps: ${total} must be more than zero`);
  for (const [k, v] of [
    ['--duration', measureS],
    ['--warmup', warmupS],
    ['connect', connectS],
  ] as const)
    if (!(v > 0)) throw new Error(`${k}: ${v} s must be more than zero`);

  const routes: RouteRate[] = compiled.routes.map((b) => ({
    budget: b,
    route: { name: b.route, recipe: recipeFor(b), method: b.method, path: b.path },
    rps: 0,
  }));
  const rates = splitRate(total, routes, d.mix).filter((r) => r.rps > 0);
  const reader = rates.find((r) => r.route.recipe === 'get-order')?.route;
  const mesh = meshProbe(
    input.target,
    reader ?? routes.find((r) => r.route.recipe === 'get-order')?.route,
  );
  const meshRate = mesh ? (input.meshRate ?? d.meshRate) : 0;

  const warmStart = connectS;
  const measureStart = connectS + warmupS;
  const peak = d.shape === 'spike' ? SPIKE_FACTOR : 1;
  const scenarios: Record<string, Scenario> = {};
  let vus = 1; // the control VU
  for (const r of rates) {
    const n = vusFor(r.rps * peak);
    vus += n;
    const env = { TRELLIS_ROUTE: r.route.name };
    scenarios[`warmup-${r.route.name}`] = arrival(
      r.rps,
      warmupS,
      warmStart,
      n,
      { phase: 'warmup' },
      'route',
      env,
    );
    scenarios[`measure-${r.route.name}`] =
      d.shape === 'spike'
        ? spikeScenario(r.rps, measureS, measureStart, n, env)
        : arrival(r.rps, measureS, measureStart, n, { phase: 'measure' }, 'route', env);
  }
  if (mesh && meshRate > 0) {
    const n = vusFor(meshRate, mesh.paths.length);
    vus += n;
    scenarios['warmup-mesh'] = arrival(
      meshRate,
      warmupS,
      warmStart,
      n,
      { phase: 'warmup' },
      'mesh',
    );
    scenarios['measure-mesh'] = arrival(
      meshRate,
      measureS,
      measureStart,
      n,
      { phase: 'measure' },
      'mesh',
    );
  }
  scenarios.connect = {
    executor: 'per-vu-iterations',
    vus,
    iterations: 1,
    maxDuration: k6Duration(connectS),
    gracefulStop: '0s',
    exec: 'connect',
    tags: { phase: 'connect' },
  };
  const mark = (exec: string, atS: number): Scenario => ({
    executor: 'shared-iterations',
    vus: 1,
    iterations: 1,
    startTime: k6Duration(atS),
    maxDuration: '10s',
    gracefulStop: '0s',
    exec,
    tags: { phase: 'control' },
  });
  scenarios['mark-start'] = mark('markStart', measureStart);
  scenarios['mark-end'] = mark('markEnd', measureStart + measureS);

  const envoyHops = mesh && meshRate > 0 ? mesh.hops.filter((h) => h.envoy).map((h) => h.name) : [];
  // Without a probe there are no hops, so no thresholds on the mesh metric (the script only defines
  // it with a probe).
  const thresholds = [
    ...runThresholds(compiled, {
      envoyHops,
      abortDelayS: measureStart + d.abortDelayS,
      ...(input.abortOnFail === false ? { abortOnFail: false } : {}),
    }),
    // Always-true thresholds: k6 reports a tag-filtered sub-metric only when a threshold names it,
    // and the report needs these for the measured phase alone.
    ...REPORT_ONLY.map(reportOnly),
    // k6 tags dropped_iterations with the scenario's name only (not its tags): one per scenario.
    ...Object.keys(scenarios)
      .filter((name) => name.startsWith('measure-'))
      .map((scenario) => reportOnly({ metric: 'dropped_iterations', tags: { scenario } })),
  ];

  const ingressHost = new URL(input.target.ingressUrl).hostname;
  const usesSidecar = mesh?.paths.some((p) => p.name === 'sidecar') === true && meshRate > 0;
  const plan: K6Plan = {
    version: 1,
    scenario: input.scenario,
    baseUrl: input.target.ingressUrl,
    tokenUrl: input.target.tokenUrl,
    routes: rates.map((r) => r.route),
    seedOrders: input.seedOrders ?? 50,
    controlUrl: input.controlUrl,
    ...(mesh && meshRate > 0 ? { mesh } : {}),
    ...(usesSidecar && input.target.mesh?.clientCert
      ? {
          clientCert: {
            domains: [new URL(input.target.mesh.sidecarUrl ?? '').hostname],
            ...input.target.mesh.clientCert,
          },
        }
      : {}),
    options: {
      scenarios,
      thresholds: renderThresholds(thresholds),
      summaryTrendStats: ['avg', 'min', 'med', 'p(50)', 'p(95)', 'p(99)', 'max', 'count'],
      setupTimeout: '120s',
      userAgent: 'trellis-load/1 (k6)',
      // `localhost` resolves to ::1 first on some hosts; the local ingress listens on 127.0.0.1.
      ...(ingressHost === 'localhost' ? { hosts: { localhost: '127.0.0.1' } } : {}),
      // The sidecar's certificate names only its SPIFFE ID (no IP or DNS SAN), which no HTTPS client
      // can verify against 127.0.0.1. With the sidecar path in the run, the runner verifies the
      // ingress certificate itself before k6 starts (see ADR 0007).
      ...(usesSidecar ? { insecureSkipTLSVerify: true } : {}),
    },
  };
  return {
    plan,
    layout: {
      measureStartS: measureStart,
      measureS,
      warmupS,
      connectS,
      totalS: measureStart + measureS,
      rates,
      meshRate,
      vus,
      thresholds,
    },
  };
}
