/**
 * The A/B gate's load, run by k6: one scenario per block of the schedule (`src/gate/plan.ts`
 * `planRounds`), each loading one arm at a constant arrival rate. Every iteration sends the same GET
 * through the arm's sidecar Envoy (mTLS, bearer token) and through the floor, a bare mTLS TCP proxy
 * in front of the same app (with the JWT payload header the sidecar would have added), in a random
 * order, and records per block: the sidecar's time, the floor's, and their difference (the Envoy
 * traversal minus the floor). Everything comes from the plan file (`TRELLIS_GATE_PLAN`); the token
 * form comes in `TRELLIS_TOKEN_FORM` and is never logged or returned. handleSummary writes only the
 * gate's metrics to `TRELLIS_GATE_RESULT` (the setup data, and so the token, stay out of it).
 */
import { check, fail } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import type { AbK6Plan } from '../src/ab/k6-plan.ts';

const plan = JSON.parse(open(__ENV.TRELLIS_GATE_PLAN ?? '')) as AbK6Plan;
if (plan.version !== 1) throw new Error(`gate plan version ${String(plan.version)} is not 1`);

export const options = {
  ...plan.options,
  // k6 presents the ingress's SVID to the sidecars and the floor (both on 127.0.0.1).
  // https://grafana.com/docs/k6/latest/using-k6/protocols/ssl-tls/ssl-tls-client-certificates/
  tlsAuth: [
    {
      domains: plan.clientCert.domains,
      cert: open(plan.clientCert.certFile),
      key: open(plan.clientCert.keyFile),
    },
  ],
};

const diff: Record<string, Trend> = {};
const side: Record<string, Trend> = {};
const floor: Record<string, Trend> = {};
for (const b of plan.blocks) {
  diff[b.index] = new Trend(`gate_diff_${b.index}`, true);
  side[b.index] = new Trend(`gate_sidecar_${b.index}`, true);
  floor[b.index] = new Trend(`gate_floor_${b.index}`, true);
}
const failures = new Counter('gate_failures');

interface SetupData {
  token: string;
  /** One order per arm (each arm's app has its own memory). */
  ids: Record<string, string>;
}

function tokenRequest(): string {
  const form = __ENV.TRELLIS_TOKEN_FORM;
  if (!form) fail('TRELLIS_TOKEN_FORM is not set: the runner passes the token request form');
  const res = http.post(plan.tokenUrl, form, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    tags: { name: 'token' },
    responseType: 'text',
  });
  let token: unknown;
  try {
    token = (JSON.parse(String(res.body)) as { access_token?: unknown } | null)?.access_token;
  } catch {
    token = undefined;
  }
  if (res.status !== 200 || typeof token !== 'string')
    fail(`token request to ${plan.tokenUrl} failed: status ${res.status} ${res.error}`);
  return token as string;
}

export function setup(): SetupData {
  const token = tokenRequest();
  const ids: Record<string, string> = {};
  for (const a of plan.arms) {
    const res = http.post(
      `${a.sidecarUrl}/orders`,
      JSON.stringify({ sku: 'gate-1', quantity: 1 }),
      {
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        tags: { name: 'seed' },
        responseType: 'text',
      },
    );
    const id =
      res.status === 202 ? (JSON.parse(String(res.body)) as { id?: string }).id : undefined;
    if (!id)
      fail(
        `setup: POST ${a.sidecarUrl}/orders (arm ${a.name}) answered ${res.status} ${res.error}`,
      );
    ids[a.name] = id as string;
  }
  const mark = http.get(`${plan.controlUrl}/mark/start`, { tags: { name: 'control' } });
  if (mark.status !== 204) fail(`setup: the runner's control mark answered ${mark.status}`);
  return { token, ids };
}

/** One iteration of a block: the sidecar and the floor, back to back, in a random order. */
export function block(data: SetupData): void {
  const i = Number(__ENV.TRELLIS_GATE_BLOCK);
  const b = plan.blocks[i];
  if (!b) fail(`scenario ${exec.scenario.name} names unknown block ${__ENV.TRELLIS_GATE_BLOCK}`);
  const a = plan.arms.find((x) => x.name === b.arm);
  if (!a) fail(`block ${i} names unknown arm ${b.arm}`);
  const id = data.ids[a.name];
  const viaSidecar = (): number | null => {
    const r = http.get(`${a.sidecarUrl}/orders/${id}`, {
      headers: { Authorization: `Bearer ${data.token}` },
      tags: { name: 'sidecar', arm: a.name },
    });
    return check(r, { 'sidecar 200': (x) => x.status === 200 }) ? r.timings.duration : null;
  };
  const viaFloor = (): number | null => {
    // What the sidecar forwards to the app: jwt_authn's payload header (the JWT's middle segment).
    const r = http.get(`${a.floorUrl}/orders/${id}`, {
      headers: { [plan.payloadHeader]: data.token.split('.')[1] ?? '' },
      tags: { name: 'floor', arm: a.name },
    });
    return check(r, { 'floor 200': (x) => x.status === 200 }) ? r.timings.duration : null;
  };
  let s: number | null;
  let f: number | null;
  if (Math.random() < 0.5) {
    s = viaSidecar();
    f = viaFloor();
  } else {
    f = viaFloor();
    s = viaSidecar();
  }
  if (s === null || f === null) {
    failures.add(1, { block: String(i) });
    return;
  }
  side[i]?.add(s);
  floor[i]?.add(f);
  diff[i]?.add(s - f);
}

export function handleSummary(data: {
  metrics: Record<string, { values: Record<string, number> }>;
}) {
  const metrics: Record<string, Record<string, number>> = {};
  for (const [name, m] of Object.entries(data.metrics))
    if (name.startsWith('gate_') || name === 'checks' || name === 'http_reqs')
      metrics[name] = m.values;
  return { [__ENV.TRELLIS_GATE_RESULT ?? 'gate-result.json']: JSON.stringify({ metrics }) };
}
