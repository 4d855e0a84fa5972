/**
 * The Trellis load test, run by k6 (1.x runs TypeScript natively). Everything it does comes from the
 * plan file the CLI writes (`TRELLIS_LOAD_PLAN`): the k6 options (scenarios and thresholds compiled
 * from the model's budgets), the routes, and the mesh probe's paths. The token endpoint's form
 * (client and user credentials) comes in `TRELLIS_TOKEN_FORM` and is never logged or returned.
 *
 * Phases, as scenario tags (the thresholds filter on `phase:measure`):
 * - `connect`: every VU sends one request to every host, so that measured requests reuse connections;
 * - `warmup`: the measured load, for a while, so that JITs, caches and pools are warm;
 * - `measure`: the load the thresholds judge; `control` marks its start and end for the runner.
 */
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import type { RefinedResponse, ResponseType } from 'k6/http';
import { Trend } from 'k6/metrics';
import type { K6Plan, MeshPath, PlanRoute } from '../src/plan-types.ts';

const plan = JSON.parse(open(__ENV.TRELLIS_LOAD_PLAN ?? '')) as K6Plan;
if (plan.version !== 1) throw new Error(`load plan version ${String(plan.version)} is not 1`);

export const options = {
  ...plan.options,
  ...(plan.clientCert
    ? {
        // k6 presents this certificate to the hosts named in `domains` (the sidecar on 127.0.0.1).
        // https://grafana.com/docs/k6/latest/using-k6/protocols/ssl-tls/ssl-tls-client-certificates/
        tlsAuth: [
          {
            domains: plan.clientCert.domains,
            cert: open(plan.clientCert.certFile),
            key: open(plan.clientCert.keyFile),
          },
        ],
      }
    : {}),
};

/** Per-path request time of the mesh probe (sending + waiting + receiving; no connect/TLS). */
const pathTrends: Record<string, Trend> = {};
/** Paired differences between two paths of one iteration: the cost of the hop between them. */
const overhead = plan.mesh ? new Trend('trellis_mesh_overhead', true) : null;
for (const p of plan.mesh?.paths ?? [])
  pathTrends[p.name] = new Trend(`trellis_path_${p.name}`, true);
/** The same differences per hop, measured phase only, for the report (k6 names allow [A-Za-z0-9_]). */
const hopTrends: Record<string, Trend> = {};
for (const h of plan.mesh?.hops ?? [])
  hopTrends[h.name] = new Trend(`trellis_hop_${h.name.replace(/[^A-Za-z0-9_]/g, '_')}`, true);

const routes: Record<string, PlanRoute> = {};
for (const r of plan.routes) routes[r.name] = r;

interface Auth {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** What setup() hands every VU (k6 copies it; it never reaches the summary export). */
interface SetupData extends Auth {
  /** Orders created in setup(), for the reads. */
  ids: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REFRESH_BEFORE_MS = 30_000;

/** Get a token from the IdP's token endpoint. Names the endpoint and the answer, never the form. */
function fetchToken(phase: string): Auth {
  const form = __ENV.TRELLIS_TOKEN_FORM;
  if (!form) fail('TRELLIS_TOKEN_FORM is not set: the runner passes the token request form');
  const res = http.post(plan.tokenUrl, form, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    tags: { name: 'token', phase },
    responseType: 'text',
  });
  let body: { access_token?: unknown; expires_in?: unknown; error?: unknown } = {};
  try {
    // A failed connection (refused, or a certificate the trust store does not vouch for) has a null
    // body, which parses to null: keep the empty object, so the failure below names res.error.
    const parsed = JSON.parse(String(res.body)) as typeof body | null;
    if (parsed !== null && typeof parsed === 'object') body = parsed;
  } catch {
    // reported below
  }
  if (res.status !== 200 || typeof body.access_token !== 'string') {
    const why = typeof body.error === 'string' ? body.error : `status ${res.status} ${res.error}`;
    fail(`token request to ${plan.tokenUrl} failed: ${why}`);
  }
  const ttl = typeof body.expires_in === 'number' ? body.expires_in : 60;
  return { token: body.access_token as string, expiresAt: Date.now() + ttl * 1000 };
}

// Per VU: the token from setup(), refreshed by this VU shortly before it expires.
let vuAuth: Auth | null = null;
function tokenFor(data: SetupData): string {
  vuAuth ??= { token: data.token, expiresAt: data.expiresAt };
  if (Date.now() > vuAuth.expiresAt - REFRESH_BEFORE_MS) vuAuth = fetchToken('auth');
  return vuAuth.token;
}

// Orders this VU created, so that write-heavy mixes read what they wrote (bounded). A POST is
// acknowledged once the order is on the queue, and the batch writer stores it shortly after
// (docs/services.md, "Write path"): until then GET answers 404. So an own order is read only once it
// is OWN_ID_SETTLE_MS old, far above the writer's lag on this stack; a 404 after that fails the check.
const ownIds: { id: string; at: number }[] = [];
const MAX_OWN_IDS = 1_000;
const OWN_ID_SETTLE_MS = 5_000;

function pickId(data: SetupData): string {
  const settled = ownIds.length > 0 && (ownIds[0]?.at ?? Infinity) <= Date.now() - OWN_ID_SETTLE_MS;
  let id: string | undefined;
  if (settled && Math.random() < 0.5) {
    const cut = Date.now() - OWN_ID_SETTLE_MS;
    let n = 0;
    while (n < ownIds.length && (ownIds[n]?.at ?? Infinity) <= cut) n++;
    id = ownIds[Math.floor(Math.random() * n)]?.id;
  } else {
    id = data.ids[Math.floor(Math.random() * data.ids.length)];
  }
  if (id === undefined) fail('no order ids to read: setup() created none');
  return id;
}

function json(res: RefinedResponse<ResponseType | undefined>): Record<string, unknown> | null {
  try {
    const v = res.json();
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function requestId(): string {
  return `load-${exec.vu.idInTest}-${exec.vu.iterationInInstance}-${Date.now()}`;
}

// Idempotency keys: unique per order, across VUs (the VU id), iterations (the counter) and runs
// (the start time and a random part), since the token's subject is the same in every run.
const keyPrefix = `load-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
let keySeq = 0;
function idempotencyKey(): string {
  keySeq++;
  return `"${keyPrefix}-${exec.vu.idInTest}-${keySeq}"`;
}

/**
 * POST an order through the ingress with its own `Idempotency-Key` (the contract of docs/services.md);
 * check the status and that the body is the order sent.
 */
function createOrder(
  route: PlanRoute,
  token: string,
  tags: Record<string, string>,
): { id: string | null; res: RefinedResponse<ResponseType | undefined> } {
  const sku = `load-${exec.vu.idInTest}-${exec.vu.iterationInInstance}`;
  const quantity = 1 + (exec.vu.iterationInInstance % 9);
  const res = http.post(`${plan.baseUrl}${route.path}`, JSON.stringify({ sku, quantity }), {
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      'Idempotency-Key': idempotencyKey(),
      'X-Request-Id': requestId(),
    },
    tags: { route: route.name, ...tags },
  });
  const body = json(res);
  const ok = check(
    res,
    {
      [`${route.name}: status 202`]: (r) => r.status === 202,
      [`${route.name}: body is the order`]: () =>
        body !== null &&
        typeof body.id === 'string' &&
        UUID.test(body.id) &&
        body.sku === sku &&
        body.quantity === quantity,
    },
    tags,
  );
  return { id: ok && body && typeof body.id === 'string' ? body.id : null, res };
}

/** Status and the start of the body, for an error message (bodies here never hold secrets). */
function describe(res: RefinedResponse<ResponseType | undefined>): string {
  const body = typeof res.body === 'string' ? res.body.slice(0, 200) : '';
  return `${res.status}${res.error ? ` (${res.error})` : ''}${body ? `: ${body}` : ''}`;
}

/** GET an order; check the status and that the body is that order. */
function getOrder(
  name: string,
  url: string,
  id: string,
  headers: Record<string, string>,
  tags: Record<string, string>,
): RefinedResponse<ResponseType | undefined> {
  const res = http.get(`${url}${orderPath(id)}`, {
    headers: { ...headers, 'X-Request-Id': requestId() },
    tags,
  });
  const body = json(res);
  check(
    res,
    {
      [`${name}: status 200`]: (r) => r.status === 200,
      [`${name}: body is the order`]: () =>
        body !== null && body.id === id && typeof body.sku === 'string',
    },
    tags,
  );
  return res;
}

let readPath = '';
function orderPath(id: string): string {
  if (!readPath) {
    const r = plan.routes.find((x) => x.recipe === 'get-order');
    if (!r) fail('the plan has no get-order route');
    readPath = r.path;
  }
  return readPath.replace('{id}', encodeURIComponent(id));
}

function runRoute(route: PlanRoute, data: SetupData): void {
  const token = tokenFor(data);
  if (route.recipe === 'create-order') {
    const { id } = createOrder(route, token, {});
    if (id && ownIds.length < MAX_OWN_IDS) ownIds.push({ id, at: Date.now() });
  } else {
    getOrder(
      route.name,
      plan.baseUrl,
      pickId(data),
      { Authorization: `Bearer ${token}` },
      { route: route.name },
    );
  }
}

/** Headers for one mesh path: the token for a sidecar, or what a sidecar would forward to the app. */
function meshHeaders(p: MeshPath, token: string): Record<string, string> {
  // buildPlan (src/plan.ts) always names it, from @trellis/contracts; k6 cannot import that package.
  const payloadHeader = plan.mesh?.payloadHeader;
  if (payloadHeader === undefined) fail('plan.mesh.payloadHeader is missing (buildPlan sets it)');
  const auth =
    p.auth === 'bearer'
      ? { Authorization: `Bearer ${token}` }
      : // The JWT's middle segment is base64url(payload JSON): what jwt_authn's forward_payload_header sends.
        { [payloadHeader]: token.split('.')[1] ?? '' };
  return { ...auth, ...(p.headers ?? {}) };
}

export function setup(): SetupData {
  const auth = fetchToken('setup');
  const ids: string[] = [];
  const writer = plan.routes.find((r) => r.recipe === 'create-order');
  const needIds = plan.routes.some((r) => r.recipe === 'get-order') || plan.mesh !== undefined;
  if (needIds) {
    if (!writer) fail('reads need orders, and the plan has no create-order route to make them');
    for (let i = 0; i < plan.seedOrders; i++) {
      const { id, res } = createOrder(writer, auth.token, { phase: 'setup' });
      if (!id)
        fail(
          `setup: seed order ${i + 1}: POST ${plan.baseUrl}${writer.path} answered ${describe(res)}`,
        );
      ids.push(id);
    }
    waitUntilWritten(ids, auth.token);
  }
  return { ...auth, ids };
}

/** `connect` phase: one request per host, so that every VU holds its connections before measuring. */
export function connect(data: SetupData): void {
  const token = tokenFor(data);
  const id = pickId(data);
  getOrder('connect', plan.baseUrl, id, { Authorization: `Bearer ${token}` }, {});
  for (const p of plan.mesh?.paths ?? [])
    if (p.name !== 'edge') getOrder('connect', p.url, id, meshHeaders(p, token), {});
}

/** A route scenario's iteration (`TRELLIS_ROUTE` is set per scenario). */
export function route(data: SetupData): void {
  const name = __ENV.TRELLIS_ROUTE ?? '';
  const r = routes[name];
  if (!r) fail(`scenario ${exec.scenario.name} names unknown route '${name}'`);
  runRoute(r, data);
}

/** How long setup() waits for the batch writer to store the seed orders. */
const SEED_WRITE_WAIT_MS = 30_000;

/** Poll until every seed order is readable (200), so the reads never race the batch writer. */
function waitUntilWritten(ids: readonly string[], token: string): void {
  const deadline = Date.now() + SEED_WRITE_WAIT_MS;
  let pending = [...ids];
  while (pending.length > 0) {
    pending = pending.filter(
      (id) =>
        http.get(`${plan.baseUrl}${orderPath(id)}`, {
          headers: { Authorization: `Bearer ${token}` },
          tags: { phase: 'setup' },
        }).status !== 200,
    );
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      fail(
        `setup: ${pending.length} of ${ids.length} seed orders were not readable within ${SEED_WRITE_WAIT_MS} ms of their 202 (is orders-writer running?), e.g. ${pending[0]}`,
      );
    sleep(0.1);
  }
}

/** The mesh probe: the same GET through each path, back to back, in a random order. */
export function mesh(data: SetupData): void {
  const m = plan.mesh;
  if (!m || !overhead) return;
  const token = tokenFor(data);
  const id = pickId(data);
  const order = [...m.paths];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const a = order[i];
    const b = order[j];
    if (a && b) {
      order[i] = b;
      order[j] = a;
    }
  }
  // Only measured iterations feed the probe's own metrics; the warm-up's would skew them.
  const measuring = exec.scenario.name.startsWith('measure');
  const took: Partial<Record<string, number>> = {};
  for (const p of order) {
    const res = getOrder(`mesh ${p.name}`, p.url, id, meshHeaders(p, token), {
      route: `mesh-${p.name}`,
      mesh_path: p.name,
    });
    if (res.status === 200) {
      took[p.name] = res.timings.duration;
      if (measuring) pathTrends[p.name]?.add(res.timings.duration);
    }
  }
  if (!measuring) return;
  for (const h of m.hops) {
    const outer = took[h.outer];
    const inner = took[h.inner];
    if (outer === undefined || inner === undefined) continue;
    overhead.add(outer - inner, { hop: h.name });
    hopTrends[h.name]?.add(outer - inner);
  }
}

function mark(what: 'start' | 'end'): void {
  const res = http.get(`${plan.controlUrl}/mark/${what}`, { tags: { name: 'control' } });
  check(res, { [`control mark ${what} acknowledged`]: (r) => r.status === 204 });
}

/** Tells the runner that measurement starts (it samples k6's CPU and scrapes Envoy from here). */
export function markStart(): void {
  mark('start');
}

/** Tells the runner that measurement ended. */
export function markEnd(): void {
  mark('end');
}
