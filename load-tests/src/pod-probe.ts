/**
 * The per-hop probe's inner paths from inside the backend's pod (issue 11 item 6). A pod's app
 * listens on the pod's own loopback, so k6 on the host cannot reach it; instead of opening the pod,
 * a small Node program runs in it as the pod's user (through the pod launcher) and times the same
 * GET through the sidecar and straight to the app, paired per iteration, as k6 does on the host.
 *
 *   host:  k6 ── edge ── ingress ── sidecar (pod address)       hops: nginx, ingress Envoy
 *   pod:   probe ── sidecar (pod address) ── app (127.0.0.1)    hop:  the backend's sidecar
 *
 * The runner warms up from k6's start and records between the runner's measure marks. It is given
 * what it may not read from disk (the ingress identity's key, whose file is the ingress's own) on its
 * stdin, never as an argument or in its environment.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { identityHeaders } from '@trellis/contracts';
import { podCommand, type PodLaunch } from '@trellis/local/pods';
import type { MeshHop, PlanRoute } from './plan-types.ts';
import type { HopResult, ThresholdResult } from './report.ts';
import type { LoadTarget } from './target.ts';

/** What the in-pod probe measures, and where. */
export interface PodProbePlan {
  pod: PodLaunch;
  /** The read route the probe sends (its `{id}` filled with a seeded order). */
  route: string;
  path: string;
  /** The backend sidecar's inbound listener (mTLS, the ingress identity's certificate). */
  sidecarUrl: string;
  /** The app on the pod's loopback. */
  appUrl: string;
  /** XFCC the direct path sends in place of the sidecar's. */
  xfcc?: string;
  payloadHeader: string;
  /** The hop it measures: sidecar minus direct. */
  hop: MeshHop;
}

/**
 * The in-pod probe for a target whose backend runs in a pod (pure): null unless the target names
 * the pod, the sidecar with a client certificate, the app, and there is a read route.
 */
export function podProbePlan(target: LoadTarget, read: PlanRoute | undefined): PodProbePlan | null {
  const m = target.mesh;
  if (!m?.pod || !m.sidecarUrl || !m.clientCert || !m.appUrl || !read) return null;
  return {
    pod: m.pod,
    route: read.name,
    path: read.path,
    sidecarUrl: m.sidecarUrl,
    appUrl: m.appUrl,
    ...(m.xfcc !== undefined ? { xfcc: m.xfcc } : {}),
    payloadHeader: m.payloadHeader ?? identityHeaders.jwtPayload,
    hop: { name: `${read.name}-sidecar`, outer: 'sidecar', inner: 'direct', envoy: true },
  };
}

/** What the in-pod program gets on its first stdin line. */
export interface PodProbeInput {
  /** Iterations per second. */
  rate: number;
  sidecarUrl: string;
  appUrl: string;
  /** The request path with the order id filled in. */
  path: string;
  token: string;
  payloadHeader: string;
  /** XFCC for the direct path, and the header it goes in. */
  xfcc?: string;
  xfccHeader?: string;
  /** PEM: the ingress identity's chain and key, and the roots the sidecar chains to. */
  cert: string;
  key: string;
  ca: string;
}

/** The paired samples of the measured window (ms). */
export interface PodProbeSamples {
  sidecar: number[];
  direct: number[];
  /** sidecar − direct, per iteration where both answered 200. */
  diffs: number[];
  /** Requests that did not answer 200 (any phase). */
  failures: number;
  requests: number;
}

/**
 * The in-pod program (CommonJS for `node -e`). stdin: the input as one JSON line, then `measure`
 * and `end` lines. It keeps one connection per path (as k6's VUs do) and prints the samples at `end`.
 */
const PROGRAM = String.raw`
const http = require('node:http'), https = require('node:https'), rl = require('node:readline');
let cfg = null, measuring = false, timer = null;
const S = { sidecar: [], direct: [], diffs: [], failures: 0, requests: 0 };
const lines = rl.createInterface({ input: process.stdin });
function get(name) {
  const tls = name === 'sidecar';
  const base = tls ? cfg.sidecarUrl : cfg.appUrl;
  const headers = tls ? { authorization: 'Bearer ' + cfg.token } : { [cfg.payloadHeader]: cfg.token.split('.')[1] || '', ...(cfg.xfcc ? { [cfg.xfccHeader]: cfg.xfcc } : {}) };
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = (tls ? https : http).request(new URL(cfg.path, base), { method: 'GET', headers, agent: tls ? tlsAgent : plainAgent }, (res) => {
      res.resume();
      res.on('end', () => { S.requests++; const ms = Number(process.hrtime.bigint() - t0) / 1e6; if (res.statusCode !== 200) S.failures++; resolve(res.statusCode === 200 ? ms : null); });
    });
    req.on('error', () => { S.requests++; S.failures++; resolve(null); });
    req.end();
  });
}
let plainAgent, tlsAgent, busy = false;
async function iteration() {
  if (busy) return; busy = true;
  const order = Math.random() < 0.5 ? ['sidecar', 'direct'] : ['direct', 'sidecar'];
  const took = {};
  for (const p of order) took[p] = await get(p);
  if (measuring) {
    for (const p of order) if (took[p] !== null) S[p].push(took[p]);
    if (took.sidecar !== null && took.direct !== null) S.diffs.push(took.sidecar - took.direct);
  }
  busy = false;
}
lines.on('line', (l) => {
  if (cfg === null) {
    cfg = JSON.parse(l);
    plainAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // The sidecar's certificate names its SPIFFE ID only: the chain is checked, the name is not.
    tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 1, cert: cfg.cert, key: cfg.key, ca: cfg.ca, checkServerIdentity: () => undefined });
    timer = setInterval(iteration, Math.max(1, Math.round(1000 / cfg.rate)));
  } else if (l.indexOf('token ') === 0) cfg.token = l.slice(6);
  else if (l === 'measure') measuring = true;
  else if (l === 'end') { clearInterval(timer); process.stdout.write(JSON.stringify(S) + '\n'); process.exit(0); }
});
`;

/** A running in-pod probe: tell it when the measured window starts, then collect its samples. */
export interface RunningPodProbe {
  measure(): void;
  /** Hand it a fresh token (before the one it has expires). */
  setToken(token: string): void;
  finish(): Promise<PodProbeSamples>;
}

/** Start the in-pod program in `plan.pod` (as the pod's user), warming up until {@link RunningPodProbe.measure}. */
export function startPodProbe(plan: PodProbePlan, input: PodProbeInput): RunningPodProbe {
  const argv = podCommand(plan.pod, process.execPath, ['-e', PROGRAM]);
  const child = spawn(argv.command, argv.args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
  child.stdin.write(`${JSON.stringify({ xfccHeader: identityHeaders.clientCert, ...input })}\n`);
  return {
    measure: () => void child.stdin.write('measure\n'),
    setToken: (token: string) => void child.stdin.write(`token ${token}\n`),
    finish: async () => {
      child.stdin.end('end\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      try {
        return JSON.parse(stdout.trim().split('\n').pop() ?? '') as PodProbeSamples;
      } catch {
        throw new Error(
          `the in-pod probe (${plan.pod.netns}) exited ${code} without samples: ${stderr.trim().slice(-400)}`,
        );
      }
    },
  };
}

/** Percentile `p` (0–100) of `xs` by linear interpolation between closest ranks (as k6's Trend). */
export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (s[lo] ?? 0) + ((s[hi] ?? 0) - (s[lo] ?? 0)) * (rank - lo);
}

/**
 * The in-pod hop as the report shows a k6 hop, and its threshold results against the mesh budget
 * (the same keys, tags and expressions k6's own hop thresholds have: measured phase only, as the
 * in-pod samples are, so a breach reads the same).
 */
export function podHopResult(
  hop: MeshHop,
  s: PodProbeSamples,
  budget?: { p50Ms: number; p99Ms: number },
  production?: { p50Ms: number; p99Ms: number },
): { hop: HopResult; thresholds: ThresholdResult[] } {
  const p50 = percentile(s.diffs, 50);
  const p99 = percentile(s.diffs, 99);
  const delta = (k: number): number | null => {
    const a = percentile(s.sidecar, k);
    const b = percentile(s.direct, k);
    return a !== null && b !== null ? a - b : null;
  };
  const thresholds: ThresholdResult[] = budget
    ? (
        [
          ['p(50)', p50, budget.p50Ms],
          ['p(99)', p99, budget.p99Ms],
        ] as const
      ).map(([stat, value, limit]) => ({
        key: `trellis_mesh_overhead{hop:${hop.name},phase:measure}`,
        expr: `${stat}<=${limit}`,
        metric: 'trellis_mesh_overhead',
        tags: { hop: hop.name, phase: 'measure' },
        // No samples is no evidence: not judged as a breach here; the report's count shows 0.
        ok: value === null || value <= limit,
        value,
      }))
    : [];
  return {
    hop: {
      ...hop,
      count: s.diffs.length,
      p50,
      p99,
      deltaP50: delta(50),
      deltaP99: delta(99),
      ...(budget ? { budget } : {}),
      ...(production ? { production } : {}),
      breached: thresholds.filter((t) => !t.ok).map((t) => `${t.metric} ${t.expr}`),
    },
    thresholds,
  };
}

function send(
  url: string,
  o: { method: string; headers: Record<string, string>; body: string; ca?: Buffer },
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method: o.method,
        headers: o.headers,
        // The local ingress and Keycloak listen on 127.0.0.1; `localhost` may resolve to ::1 first.
        family: u.hostname === 'localhost' ? 4 : 0,
        timeout: 10_000,
        ...(o.ca ? { ca: o.ca } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * A token and one order to read, for the in-pod probe (k6's seeded orders stay inside k6): the
 * token from the target's endpoint, the order created through the ingress with `createPath`.
 */
/** How long the probe's seed order may take to be written by the batch writer. */
const SEED_WRITE_WAIT_MS = 30_000;

export async function seedPodProbe(
  target: LoadTarget,
  createPath: string,
  readPath: string,
): Promise<{ token: string; expiresInS: number; id: string }> {
  const ca = target.trustBundle ? readFileSync(target.trustBundle) : undefined;
  const { token, expiresInS } = await probeToken(target);
  const c = await send(`${target.ingressUrl}${createPath}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sku: 'pod-probe', quantity: 1 }),
    ...(ca ? { ca } : {}),
  });
  const id = (JSON.parse(c.body || '{}') as { id?: unknown }).id;
  if (c.status !== 202 || typeof id !== 'string')
    throw new Error(
      `in-pod probe: POST ${createPath} answered ${c.status}: ${c.body.slice(0, 200)}`,
    );
  // The order is acknowledged once queued; the batch writer stores it shortly after (GET is 404
  // until then), and the probe must only ever read a stored order.
  const url = `${target.ingressUrl}${readPath.replace(/\{[^/}]+\}/, encodeURIComponent(id))}`;
  const deadline = Date.now() + SEED_WRITE_WAIT_MS;
  for (;;) {
    const r = await send(url, {
      method: 'GET',
      headers: { authorization: `Bearer ${token}` },
      body: '',
      ...(ca ? { ca } : {}),
    });
    if (r.status === 200) break;
    if (Date.now() > deadline)
      throw new Error(
        `in-pod probe: order ${id} was not readable within ${SEED_WRITE_WAIT_MS} ms of its 202 (GET answered ${r.status}; is orders-writer running?)`,
      );
    await new Promise((done) => setTimeout(done, 100));
  }
  return { token, expiresInS, id };
}

/** A token for the in-pod probe from the target's endpoint (the form is never logged). */
export async function probeToken(
  target: LoadTarget,
): Promise<{ token: string; expiresInS: number }> {
  const ca = target.trustBundle ? readFileSync(target.trustBundle) : undefined;
  const t = await send(target.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(target.tokenForm).toString(),
    ...(ca ? { ca } : {}),
  });
  const body = JSON.parse(t.body || '{}') as { access_token?: unknown; expires_in?: unknown };
  if (t.status !== 200 || typeof body.access_token !== 'string')
    throw new Error(`in-pod probe: token request to ${target.tokenUrl} answered ${t.status}`);
  return {
    token: body.access_token,
    expiresInS: typeof body.expires_in === 'number' ? body.expires_in : 60,
  };
}
