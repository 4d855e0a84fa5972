// Issue 15: a burn-rate alert fires under an injected delay and clears after it (ADR 0025). The e2e
// stack compiles its SLO rules at time scale 30 (Pulumi.e2e.yaml: the 1h/5m page reads 2m/10s,
// Prometheus scrapes and evaluates every 2 s) and gives orders-api's sidecar an inert fault delay
// filter. Under a steady, bounded GET load through the front door this file shows get-order's
// latency page inactive while the route is healthy, turns a delay above its p99 budget on through the
// sidecar's admin runtime (from inside the pod, where the admin listens), waits until Prometheus
// reports the page firing for get-order, turns the delay off, and waits until it is no longer firing.
// It restores the runtime whatever happens, so the files after it see no delay.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInPod } from '@trellis/local/pods';
import {
  durationSeconds,
  faultDelayRuntime,
  scaledBurnWindows,
  sloAlerts,
  sloSeries,
  type BoundModel,
} from '@trellis/policy';
import { call, outputs, pods, secretOutputs, token } from './support.ts';

/** The stack's time scale (Pulumi.e2e.yaml `trellis-local:sloTimeScale`). */
const TIME_SCALE = 30;
/** The page tier (1h/5m at 14.4x) as the scaled rules write it: 2m/10s. */
const page = scaledBurnWindows(TIME_SCALE)[0];
const ROUTE = 'get-order';
const WORKLOAD = 'orders-api';
/** The budgets environment the e2e stack's rules judge by (`trellis-local:sloBudgets`). */
const BUDGETS = 'ci';
/** The injected delay: above get-order's p99 budget there (30 ms), well inside every timeout. */
const DELAY_MS = 100;
/** How much earlier than the delay a delayed request may be answered (see the delay test). */
const DELAY_SLACK_MS = 5;
/**
 * The steady load: GETs per second through nginx (under get-order's `rps` there, 13, above which the
 * budget was never promised), and the clients that keep it up under the delay.
 */
const RATE = 10;
const CLIENTS = 4;
/** Bounds of each wait (expected: a few scaled windows, 10-20 s). */
const FIRE_WITHIN_MS = 90_000;
const CLEAR_WITHIN_MS = 90_000;
/** Prometheus's scrape and evaluation interval on the e2e stack (`trellis-local:scrapeInterval`). */
const SCRAPE_S = 2;

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
}

const prometheusUrl = (): string => {
  const p = outputs().prometheus;
  if (p === undefined) throw new Error('the stack exports no prometheus output');
  return p.url;
};

/** get-order's latency page (the 1h/5m tier, scaled) as Prometheus reports it now, if active. */
async function pageAlert(): Promise<Alert | undefined> {
  const r = await call(`${prometheusUrl()}/api/v1/alerts`);
  if (r.status !== 200) throw new Error(`/api/v1/alerts: HTTP ${r.status}: ${r.body}`);
  const alerts = (JSON.parse(r.body) as { data: { alerts: Alert[] } }).data.alerts;
  return alerts.find(
    (a) =>
      a.labels['alertname'] === sloAlerts.latency &&
      a.labels['route'] === ROUTE &&
      a.labels['severity'] === 'page' &&
      a.labels['long_window'] === page?.long &&
      a.labels['short_window'] === page?.short,
  );
}

/** One instant value of `expr`, or undefined when the result is empty. */
async function query(expr: string): Promise<number | undefined> {
  const r = await call(`${prometheusUrl()}/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (r.status !== 200) throw new Error(`query ${expr}: HTTP ${r.status}: ${r.body}`);
  const result = (JSON.parse(r.body) as { data: { result: { value: [number, string] }[] } }).data
    .result;
  return result[0] === undefined ? undefined : Number(result[0].value[1]);
}

const slowRatio = (window: string): Promise<number | undefined> =>
  query(`${sloSeries.slowRatio(window)}{route="${ROUTE}"}`);

/**
 * A request to orders-api's sidecar admin interface (`path` with its query), from where it
 * listens: inside the workload's pod as the pod's user, or on the host's loopback without pods.
 */
async function admin(
  method: 'GET' | 'POST',
  path: string,
): Promise<{ status: number; body: string }> {
  const url = `${outputs().sidecars[WORKLOAD]?.adminUrl ?? ''}${path}`;
  const pod = pods()[WORKLOAD];
  if (pod === undefined) {
    const r = await fetch(url, { method, signal: AbortSignal.timeout(5_000) });
    return { status: r.status, body: await r.text() };
  }
  const r = await runInPod(
    pod.launch,
    process.execPath,
    [
      '-e',
      'fetch(process.argv[1], { method: process.argv[2], signal: AbortSignal.timeout(5000) }).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e) })))',
      url,
      method,
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`${WORKLOAD}: admin ${method} ${path} in its pod: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status: number; body: string };
}

/** Set (or, with '', remove) the delay's runtime keys, and read back what Envoy now uses. */
async function setDelay(percent: string, durationMs: string): Promise<Record<string, string>> {
  const q = new URLSearchParams({
    [faultDelayRuntime.percent]: percent,
    [faultDelayRuntime.durationMs]: durationMs,
  });
  const set = await admin('POST', `/runtime_modify?${q.toString()}`);
  if (set.status !== 200) throw new Error(`runtime_modify: HTTP ${set.status}: ${set.body}`);
  const got = await admin('GET', '/runtime');
  const entries = (JSON.parse(got.body) as { entries: Record<string, { final_value: string }> })
    .entries;
  return Object.fromEntries(
    Object.values(faultDelayRuntime).map((k) => [k, entries[k]?.final_value ?? '']),
  );
}

async function until<T>(f: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** The steady load: RATE GETs per second of one order, on kept-alive connections, until stopped. */
function startLoad(url: string, bearer: string) {
  const agent = new Agent({ keepAlive: true, ca: readFileSync(outputs().trustBundle) });
  const samples: { at: number; ms: number; status: number }[] = [];
  let stop = false;
  const get = () =>
    new Promise<number>((resolve) => {
      const req = request(
        url,
        { agent, headers: { authorization: `Bearer ${bearer}` }, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', () => resolve(0));
      req.end();
    });
  const t0 = Date.now();
  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    // Client c owns every CLIENTS-th slot of the schedule; a slot missed under the delay is skipped.
    // Bounded: at most 10 minutes of slots.
    for (let slot = c; !stop && slot < RATE * 600; slot += CLIENTS) {
      const due = t0 + (slot * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -1000 / RATE) continue;
      const start = Date.now();
      const status = await get();
      samples.push({ at: start, ms: Date.now() - start, status });
    }
  });
  return {
    samples,
    async stop() {
      stop = true;
      await Promise.all(clients);
      agent.destroy();
    },
  };
}

describe('a burn-rate alert fires under an injected delay and clears after it (issue 15, ADR 0025)', () => {
  let load: ReturnType<typeof startLoad> | undefined;
  let loadStarted = 0;
  const t0 = Date.now();

  beforeAll(async () => {
    const alice = await token('alice');
    const created = await call(`${outputs().ingressUrl}/orders`, {
      method: 'POST',
      body: JSON.stringify({ sku: 'slo-e2e', quantity: 1 }),
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(created.status, created.body).toBe(202);
    const url = `${outputs().ingressUrl}/orders/${(JSON.parse(created.body) as { id: string }).id}`;
    // Stored by orders-writer a moment later (404 until then).
    await until(
      async () =>
        (await call(url, { headers: { authorization: `Bearer ${alice}` } })).status === 200
          ? true
          : undefined,
      30_000,
      'the order stored',
    );
    // A fresh stack's first requests on the path are slower than the budget (orders-api's first
    // reads, JIT): a few of them, sequential, before the steady load.
    for (let i = 0; i < 10; i++) await call(url, { headers: { authorization: `Bearer ${alice}` } });
    load = startLoad(url, alice);
    loadStarted = Date.now();
  });

  afterAll(async () => {
    // Whatever happened above: no delay for the files after this one, and no load left running.
    await setDelay('', '').catch(() => undefined);
    await load?.stop();
    process.stdout.write(`slo-alert: whole file ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });

  it('the stack runs the scaled rules, and the fault filter is inert (0 %) until the runtime turns it on', async () => {
    const model = (secretOutputs() as { model: BoundModel }).model;
    const p99Ms = model.budgets?.environments?.[BUDGETS]?.routes?.[ROUTE]?.p99Ms ?? Infinity;
    expect(p99Ms).toBeLessThan(DELAY_MS);
    expect(RATE).toBeLessThanOrEqual(
      model.budgets?.environments?.[BUDGETS]?.routes?.[ROUTE]?.rps ?? 0,
    );
    // Prometheus runs the rules at the stack's scale, judging get-order by that budget's bucket.
    const r = await call(`${prometheusUrl()}/api/v1/rules?type=record`);
    const rules = (
      JSON.parse(r.body) as { data: { groups: { rules: { name: string; query: string }[] }[] } }
    ).data.groups.flatMap((g) => g.rules);
    const slow = rules.find(
      (x) => x.name === sloSeries.slowRatio(page?.short ?? '') && x.query.includes(`"${ROUTE}"`),
    );
    expect(slow?.query).toContain(`le="${p99Ms}"`);
    expect(slow?.query).toContain(`[${page?.short ?? ''}]`);
    expect(page).toMatchObject({ severity: 'page', long: '2m', short: '10s', factor: 14.4 });
    const stats = await admin('GET', '/stats?filter=fault&format=json');
    expect(stats.body).toContain('fault.delays_injected');
    const runtime = await admin('GET', '/runtime');
    expect(runtime.status, runtime.body).toBe(200);
    const entries = (JSON.parse(runtime.body) as { entries: Record<string, unknown> }).entries;
    expect(entries[faultDelayRuntime.percent]).toBeUndefined();
  });

  it('healthy: under the steady load the page is not active, with both windows measured', async () => {
    // Judged once the short window holds the steady load alone (its length and two evaluations after
    // the load started); the long one still holds the warm-up. Both ratios must be recorded.
    const steady = loadStarted + (durationSeconds(page?.short ?? '') + 2 * SCRAPE_S) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, steady - Date.now())));
    await until(
      async () =>
        (await slowRatio(page?.short ?? '')) !== undefined &&
        (await slowRatio(page?.long ?? '')) !== undefined
          ? true
          : undefined,
      60_000,
      'the slow ratios of get-order recorded',
    );
    const checks: { short?: number; long?: number; alert?: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await pageAlert();
      checks.push({
        short: await slowRatio(page?.short ?? ''),
        long: await slowRatio(page?.long ?? ''),
        ...(a ? { alert: a.state } : {}),
      });
      await new Promise((r) => setTimeout(r, 2_000));
    }
    process.stdout.write(`slo-alert healthy: ${JSON.stringify(checks)}\n`);
    expect(checks.filter((c) => c.alert !== undefined)).toEqual([]);
    expect(load?.samples.filter((s) => s.status !== 200)).toEqual([]);
  });

  it(`delay ${DELAY_MS} ms at the sidecar: the page fires for get-order; without it, it clears`, async () => {
    const injected = await setDelay('100', String(DELAY_MS));
    expect(injected).toEqual({
      [faultDelayRuntime.percent]: '100',
      [faultDelayRuntime.durationMs]: String(DELAY_MS),
    });
    const tInject = Date.now();
    const fired = await until(
      async () => {
        const a = await pageAlert();
        return a?.state === 'firing' ? a : undefined;
      },
      FIRE_WITHIN_MS,
      `${sloAlerts.latency} (page, ${page?.long}/${page?.short}) firing for ${ROUTE}`,
    );
    const fireS = (Date.now() - tInject) / 1000;
    expect(fired.labels).toMatchObject({ slo: 'latency', time_scale: String(TIME_SCALE) });
    // The delay was real: the requests of the last three seconds all took about the delay or more.
    // 5 ms of slack: a fresh-clone run (2026-12-07, 22:41 UTC) saw one request answered in 98 ms
    // under the 100 ms fault. The likely cause, not traced: Envoy's timers run on libevent, which
    // arms a timer from the time it cached at the start of the loop's pass, so a timer can fire a few
    // ms early in real time. An undelayed GET takes 5-10 ms here, so 95 ms still proves the delay.
    const recent = load?.samples.filter((s) => s.at > Date.now() - 3_000) ?? [];
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.filter((s) => s.ms < DELAY_MS - DELAY_SLACK_MS)).toEqual([]);

    expect(await setDelay('', '')).toEqual({
      [faultDelayRuntime.percent]: '',
      [faultDelayRuntime.durationMs]: '',
    });
    const tRemove = Date.now();
    await until(
      async () => ((await pageAlert())?.state === 'firing' ? undefined : true),
      CLEAR_WITHIN_MS,
      `${sloAlerts.latency} (page) for ${ROUTE} no longer firing`,
    );
    const clearS = (Date.now() - tRemove) / 1000;
    const after = load?.samples.filter((s) => s.at > Date.now() - 2_000) ?? [];
    process.stdout.write(
      `slo-alert: page fired ${fireS.toFixed(1)} s after the delay went on, cleared ` +
        `${clearS.toFixed(1)} s after it went off; ${load?.samples.length ?? 0} requests so far, ` +
        `short-window slow ratio now ${String(await slowRatio(page?.short ?? ''))}\n`,
    );
    expect(after.some((s) => s.ms < DELAY_MS)).toBe(true);
    expect(load?.samples.filter((s) => s.status !== 200)).toEqual([]);
  });
});
