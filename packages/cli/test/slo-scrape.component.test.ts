/**
 * The SLO rules against live metrics: a real Envoy runs the edge listener compiled from the reference
 * model (its routes, their `stat_prefix`, the HCM and filters as `compileEnvoy` writes them), and a real
 * Prometheus scrapes its `/stats/prometheus` with the compiled rule file loaded. Only the hop behind the
 * edge is replaced: `outbound_orders-api` goes to a plain HTTP stand-in on loopback instead of the
 * orders-api sidecar over mTLS, so the test needs no PKI; the stand-in fails every second POST and
 * answers every second GET after 40 ms.
 *
 * It shows the metric contract holds on a real Envoy (the series and labels the rules read exist, with
 * the counts sent), that the recording rules produce the ratios those counts imply, that the burn
 * alerts fire for the route that burns and stay silent for the one that does not, and that the
 * consoles compiled from the model (ADR 0024) render on that Prometheus with those values.
 *
 * With `TRELLIS_CONSOLE_SCREENSHOTS=<dir>` and `TRELLIS_CHROMIUM=<chromium-headless-shell>` set, the
 * last test also saves screenshots of two consoles there (docs/observability.md, "Dashboards").
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  freePort,
  startEnvoy,
  startPrometheus,
  waitUntil,
  type EnvoyInstance,
  type PrometheusInstance,
} from '@trellis/local/harness';
import { ensurePrometheus } from '@trellis/local/toolchain';
import {
  bindOrThrow,
  compileConsoles,
  compileEnvoy,
  compileSloRules,
  consoleSourceMetrics,
  envoyOptions,
  parseModel,
  scrapeJobs,
  sloAlerts,
  sloSeries,
} from '@trellis/policy';
import type { PrometheusScrapeFile } from '@trellis/policy';
import type { BoundModel } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const runFile = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'trellis-slo-scrape-'));

function referenceModel(): BoundModel {
  const text = readFileSync(
    fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)),
    'utf8',
  );
  const r = parseModel(text);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

interface Listener {
  name: string;
  address: { socket_address: { address: string; port_value: number } };
}

/**
 * The compiled ingress bootstrap with only its edge listener, on `listenPort`, and the backend cluster
 * pointed at the stand-in without TLS. Fails when the compiled shape is not what this test replaces.
 */
function edgeBootstrap(model: BoundModel, listenPort: number, backendPort: number) {
  const b = compileEnvoy(model, envoyOptions(model, 'ingress')).bootstrap;
  const edge = b.static_resources.listeners.find((l) => l.name === 'inbound_http') as
    (Listener & Record<string, unknown>) | undefined;
  if (!edge) throw new Error('compiled ingress has no inbound_http listener');
  const backend = 'outbound_orders-api';
  if (!b.static_resources.clusters.some((c) => c.name === backend))
    throw new Error(`compiled ingress has no ${backend} cluster`);
  return {
    node: b.node,
    // Histograms reach the admin output when Envoy merges them, every flush (default 5 s).
    stats_flush_interval: '1s',
    static_resources: {
      listeners: [
        {
          ...edge,
          address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
        },
      ],
      clusters: [
        {
          name: backend,
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: backend,
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: {
                      address: {
                        socket_address: { address: '127.0.0.1', port_value: backendPort },
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
    },
  };
}

/** The orders-api stand-in: every second POST gets a 503, every second GET waits 40 ms. */
function standIn(): Server {
  let posts = 0;
  let gets = 0;
  return createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') {
        posts += 1;
        res.writeHead(posts % 2 === 0 ? 503 : 201).end();
        return;
      }
      gets += 1;
      if (gets % 2 === 0) setTimeout(() => res.writeHead(200).end(), 40);
      else res.writeHead(200).end();
    });
  });
}

const model = referenceModel();
/** The job's name is the stack's, so that the ingress's hop console reads it. */
const job = scrapeJobs.envoy('ingress');
let backend: Server;
let envoy: EnvoyInstance;
let prom: PrometheusInstance;
let edgeUrl: string;
let promtool: string;

/** `n` requests of each route, one after another. */
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const post = await fetch(`${edgeUrl}/orders`, { method: 'POST', body: '{}' });
    await post.arrayBuffer();
    const get = await fetch(`${edgeUrl}/orders/o-${i}`);
    await get.arrayBuffer();
  }
}

/** One value from Envoy's own /stats/prometheus text, or undefined. */
async function envoyStat(line: string): Promise<number | undefined> {
  const text = await (await fetch(`${envoy.adminUrl}/stats/prometheus`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

const one = async (q: string): Promise<number | undefined> => (await prom.query(q))[0]?.value;

beforeAll(async () => {
  promtool = (await ensurePrometheus()).promtool;
  backend = standIn();
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as AddressInfo).port;
  const listenPort = await freePort();
  envoy = await startEnvoy({
    dir: join(root, 'envoy'),
    name: 'edge-envoy',
    config: edgeBootstrap(model, listenPort, backendPort),
  });
  edgeUrl = `http://127.0.0.1:${listenPort}`;
  // One request of each kind before the first scrape, so every series the rules read already exists
  // then: rate() over a series that appears later would miss its first increments. Histograms reach
  // the admin output at Envoy's next stats flush, so wait for them.
  await traffic(2);
  await waitUntil(
    async () =>
      (await envoyStat(
        'envoy_vhost_route_upstream_rq_time_count{envoy_virtual_host="inbound_http",envoy_route="get-order"}',
      )) === 2,
    { what: 'the get-order histogram on /stats/prometheus', timeoutMs: 20_000, intervalMs: 250 },
  );
  const adminHostPort = new URL(envoy.adminUrl).host;
  const scrape: PrometheusScrapeFile = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: [
      {
        job_name: job,
        scheme: 'http',
        metrics_path: '/stats/prometheus',
        static_configs: [{ targets: [adminHostPort] }],
      },
    ],
  };
  const consoles = compileConsoles(model, scrape);
  const layout = await ensurePrometheus();
  const dir = join(root, 'prometheus');
  prom = await startPrometheus({
    dir,
    config: stringify({ ...scrape, rule_files: ['slo-rules.yaml'] }),
    files: {
      'slo-rules.yaml': stringify(compileSloRules(model)),
      ...Object.fromEntries(
        Object.entries(consoles.consoles).map(([f, t]) => [`consoles/${f}`, t]),
      ),
      ...Object.fromEntries(
        Object.entries(consoles.libraries).map(([f, t]) => [`console_libraries/${f}`, t]),
      ),
      'console_libraries/prom.lib': readFileSync(join(layout.consoleLibraries, 'prom.lib'), 'utf8'),
    },
    args: [
      `--web.console.templates=${join(dir, 'consoles')}`,
      `--web.console.libraries=${join(dir, 'console_libraries')}`,
      `--web.local-assets=${layout.webAssets}`,
    ],
  });
}, 120_000);

afterAll(async () => {
  await prom?.stop();
  await envoy?.stop();
  await new Promise((resolve) => backend?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('SLO rules on a real Prometheus scraping a real Envoy', () => {
  it('promtool accepts the config with the compiled rule file', async () => {
    const { stdout } = await runFile(promtool, [
      'check',
      'config',
      join(root, 'prometheus', 'prometheus.yml'),
    ]);
    expect(stdout).toContain('SUCCESS: 1 rule files found');
    expect(stdout).toMatch(
      /slo-rules\.yaml is valid prometheus config file syntax|SUCCESS: \d+ rules found/,
    );
  });

  it('scrapes the edge Envoy: the target is up', async () => {
    await waitUntil(async () => (await one(`up{job="${job}"}`)) === 1, {
      what: `up{job="${job}"} = 1`,
      timeoutMs: 15_000,
      intervalMs: 250,
      proc: prom.process,
    });
    const targets = await prom.api<{ activeTargets: { health: string; scrapeUrl: string }[] }>(
      'targets?state=active',
    );
    expect(targets.activeTargets.map((t) => t.health)).toEqual(['up']);
    expect(targets.activeTargets[0]?.scrapeUrl).toBe(`${envoy.adminUrl}/stats/prometheus`);
  });

  it('reads the per-route series the rules name, with the counts sent', async () => {
    await traffic(20);
    const count = `envoy_vhost_route_upstream_rq_time_count{envoy_route="get-order"}`;
    await waitUntil(async () => (await one(count)) === 22, {
      what: `${count} = 22 in Prometheus`,
      timeoutMs: 20_000,
      intervalMs: 250,
      proc: prom.process,
    });
    const rq = (route: string, extra = '') =>
      one(`envoy_vhost_route_upstream_rq_completed{envoy_route="${route}"${extra}}`);
    expect(await rq('create-order')).toBe(22);
    expect(await rq('get-order')).toBe(22);
    expect(
      await one(
        'envoy_vhost_route_upstream_rq_xx{envoy_route="create-order",envoy_response_code_class="5"}',
      ),
    ).toBe(11);
    expect(
      await prom.query(
        'envoy_vhost_route_upstream_rq_xx{envoy_route="get-order",envoy_response_code_class="5"}',
      ),
    ).toEqual([]);
    // The histogram the latency SLI reads: the budget boundary is a bucket, and the 40 ms half is over it.
    const under5 = await one(
      'envoy_vhost_route_upstream_rq_time_bucket{envoy_route="get-order",le="5"}',
    );
    expect(under5).toBeLessThanOrEqual(11);
  });

  it('records the ratios the counts imply, and alerts on the route that burns', async () => {
    // Two evaluation intervals after the last scrape counted above, the rules have seen it.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const ratio = (series: string, route: string) => one(`${series}{route="${route}"}`);
    // Both series come from the same scrapes, so the extrapolation of rate() cancels: 10 of 20.
    expect(await ratio(sloSeries.errorRatio('5m'), 'create-order')).toBeCloseTo(0.5, 6);
    expect(await ratio(sloSeries.errorRatio('1h'), 'create-order')).toBeCloseTo(0.5, 6);
    // No 5xx series for get-order: the `or vector(0)` makes it a ratio of 0, not an absent one.
    expect(await ratio(sloSeries.errorRatio('5m'), 'get-order')).toBe(0);
    // At least the delayed half is slower than the 5 ms budget (a loaded machine may add more).
    const slow = await ratio(sloSeries.slowRatio('5m'), 'get-order');
    expect(slow).toBeGreaterThanOrEqual(0.5);
    expect(slow).toBeLessThanOrEqual(1);
    expect(await ratio(sloSeries.requestRate, 'get-order')).toBeGreaterThan(0);

    const alerts = await prom.api<{
      alerts: { labels: Record<string, string>; state: string }[];
    }>('alerts');
    const firing = (name: string, route: string) =>
      alerts.alerts
        .filter(
          (a) => a.state === 'firing' && a.labels.alertname === name && a.labels.route === route,
        )
        .map((a) => a.labels.long_window)
        .sort();
    // create-order allows no errors (maxErrorRate 0): half failing pages on every tier.
    expect(firing(sloAlerts.availability, 'create-order')).toEqual(['1d', '1h', '3d', '6h']);
    // get-order had no 5xx: nothing.
    expect(firing(sloAlerts.availability, 'get-order')).toEqual([]);
    // get-order's slow half is far over 14.4 x 1 %: the latency alert of every tier.
    expect(firing(sloAlerts.latency, 'get-order')).toEqual(['1d', '1h', '3d', '6h']);
  });

  it('renders the consoles compiled from the model, with these values (ADR 0024)', async () => {
    const t0 = Date.now();
    const get = async (file: string) => {
      const res = await fetch(`${prom.url}/consoles/${file}`, {
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.text() };
    };
    const index = await get('index.html');
    expect(index.status, index.body.slice(0, 500)).toBe(200);
    for (const route of ['create-order', 'get-order'])
      expect(index.body).toContain(`<a href="route-${route}.html">${route}</a>`);
    expect(index.body).toContain('<a href="hop-ingress.html">');
    // Prometheus evaluated the queries: create-order's 5xx ratio is the 50 % the stand-in returns.
    const route = await get('route-create-order.html');
    expect(route.status, route.body.slice(0, 500)).toBe(200);
    const row = (label: string) =>
      new RegExp(`<th>${label}</th><td>\\s*<a class="prom_query_drilldown"[^>]*>([^<]*)</a>`).exec(
        route.body,
      )?.[1];
    expect(row('error ratio \\(5m\\)')).toBe('50%');
    expect(Number(row('alerts firing'))).toBeGreaterThan(0);
    expect(route.body).toContain('new PromConsole.Graph(');
    const hop = await get('hop-ingress.html');
    expect(hop.status, hop.body.slice(0, 500)).toBe(200);
    expect(/<th>scrape up<\/th><td>\s*<a[^>]*>1<\/a>/.test(hop.body)).toBe(true);
    // The hop's rows read the sidecar's own series: both have values (the edge served traffic).
    const hopRow = (label: string) =>
      new RegExp(`<th>${label}</th><td>\\s*<a class="prom_query_drilldown"[^>]*>([^<]*)</a>`).exec(
        hop.body,
      )?.[1];
    expect(Number.parseFloat(hopRow('requests in \\(5m\\)') ?? '')).toBeGreaterThan(0);
    expect(Number.parseFloat(hopRow('p99 through the sidecar \\(5m\\)') ?? '')).toBeGreaterThan(0);
    // Every sidecar series a hop console reads exists on this real Envoy.
    for (const name of consoleSourceMetrics.envoy)
      expect((await prom.query(`${name}{job="${job}"}`)).length, name).toBeGreaterThan(0);
    // A console of a hop this Prometheus does not scrape was not compiled.
    expect((await get('hop-cassandra.html')).status).toBe(404);
    console.info(`consoles checked in ${Date.now() - t0} ms`);

    const shots = process.env.TRELLIS_CONSOLE_SCREENSHOTS;
    const chromium = process.env.TRELLIS_CHROMIUM;
    if (shots !== undefined && chromium !== undefined)
      for (const [file, png] of [
        ['route-create-order.html', 'console-route-create-order.png'],
        ['index.html', 'console-index.png'],
      ] as const)
        await runFile(
          chromium,
          [
            '--no-sandbox',
            '--hide-scrollbars',
            '--window-size=1200,1400',
            '--virtual-time-budget=5000',
            `--screenshot=${join(shots, png)}`,
            // The graphs' range: the last 60 s (the time control reads it from the hash).
            `${prom.url}/consoles/${file}#pctc${encodeURIComponent(JSON.stringify({ duration: 60, endTime: 0 }))}`,
          ],
          { timeout: 60_000 },
        );
  });
});
