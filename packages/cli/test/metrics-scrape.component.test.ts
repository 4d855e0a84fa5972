/**
 * The metrics scraper over mTLS (ADR 0020): a real Envoy runs orders-api's sidecar as `compileEnvoy`
 * makes it from the reference model (its metrics listener, mTLS that admits only the scraper's SPIFFE
 * ID, RBAC on GET and the exact paths), in front of a stand-in app that serves `/metrics`; a real
 * Prometheus runs the scrape jobs `compilePrometheusScrape` makes for orders-api, with an SVID of the
 * scraper's identity. Only addresses change: the listeners and the app are on free loopback ports,
 * and the certificates come from a throwaway CA (the sidecar's carries the DNS name Prometheus checks).
 *
 * First the right caller works (both targets up, the app's metric and Envoy's in Prometheus, a direct
 * GET with the scraper's SVID), then every wrong one is refused: another workload's SVID, no client
 * certificate, plaintext, a non-metrics path or method, and the scraper on the app's own mesh port.
 *
 * The data nodes the same way: a real Cassandra and a real Kafka (plaintext, no auth: only their
 * metrics are under test) run the JMX exporter agent on 127.0.0.1, each fronted by the Envoy that
 * `compileDataMetricsProxy` makes (the node's SVID, the scraper only), and the same Prometheus scrapes
 * both fronts (jobs `jmx-cassandra`, `jmx-kafka`). They start while the sidecar starts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import {
  CertificateAuthority,
  freePorts,
  startCassandra,
  startEnvoy,
  startKafka,
  startPrometheus,
  waitUntil,
  writePemFiles,
  type CassandraServer,
  type EnvoyInstance,
  type KafkaServer,
  type PemFiles,
  type PrometheusInstance,
} from '@trellis/local/harness';
import { ensurePrometheus } from '@trellis/local/toolchain';
import {
  bindOrThrow,
  compileDataMetricsProxy,
  compileEnvoy,
  dataMetricsServerName,
  dataServiceSpiffeId,
  compilePrometheusScrape,
  consoleSourceMetrics,
  envoyOptions,
  metricsServerName,
  parseModel,
  scraperSpiffeId,
  spiffeId,
  type BoundModel,
} from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const runFile = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'trellis-metrics-scrape-'));
const workload = 'orders-api';

function referenceModel(): BoundModel {
  const text = readFileSync(
    fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)),
    'utf8',
  );
  const r = parseModel(text);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, { kind: 'example', baseDir: root }, 'example plan');
}

const model = referenceModel();
const serverName = metricsServerName(model, workload);
let app: Server;
let envoy: EnvoyInstance;
let prom: PrometheusInstance;
let metricsPort: number;
let inboundPort: number;
let ca: CertificateAuthority;
const svids: Record<'sidecar' | 'scraper' | 'ledger' | 'cassandra' | 'kafka', PemFiles> =
  {} as never;
type DataNode = 'cassandra' | 'kafka';
/** Per data node: the exporter's loopback port, the mTLS front's port, the front itself. */
const data = {} as Record<DataNode, { exporter: number; front: number; envoy?: EnvoyInstance }>;
let cassandra: CassandraServer | undefined;
let kafka: KafkaServer | undefined;
/** The data nodes' start, awaited in afterAll too: a failed set-up must not leave them running. */
let nodes: Promise<unknown> | undefined;

/** The stand-in app: `/metrics` in Prometheus text, anything else 200 "app". */
function standIn(): Server {
  return createServer((req, res) => {
    req.resume();
    if (req.url === '/metrics')
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        .end('# TYPE trellis_standin_up gauge\ntrellis_standin_up 1\n');
    else res.writeHead(200).end('app');
  });
}

/** One HTTPS request with a client certificate (or none); rejects on a TLS or connection failure. */
function mtls(
  port: number,
  path: string,
  who: PemFiles | undefined,
  method = 'GET',
  servername = serverName,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        servername,
        ca: ca.rootPem,
        ...(who ? { cert: readFileSync(who.cert), key: readFileSync(who.key) } : {}),
        agent: false,
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const t0 = Date.now();
  ca = await CertificateAuthority.create({ commonName: 'trellis metrics test root' });
  const pki = join(root, 'pki');
  const issue = async (name: keyof typeof svids, uri: string, dns: string[] = []) => {
    const cert = await ca.issue({ uris: [uri], dns, validDays: 1 });
    svids[name] = writePemFiles(join(pki, name), name, cert, ca.rootPem);
  };
  const scraper = scraperSpiffeId(model);
  if (scraper === undefined) throw new Error('the reference model has no metrics scraper');
  await issue('sidecar', spiffeId(model, workload), [serverName]);
  await issue('scraper', scraper);
  await issue('ledger', spiffeId(model, 'ledger'));
  for (const node of ['cassandra', 'kafka'] as const)
    await issue(node, dataServiceSpiffeId(model, node), [dataMetricsServerName(model, node)]);

  // The data nodes start first (the longest part), with the agent on 127.0.0.1; the sidecar meanwhile.
  const [cx, cf, kx, kf] = (await freePorts(4)) as [number, number, number, number];
  data.cassandra = { exporter: cx, front: cf };
  data.kafka = { exporter: kx, front: kf };
  nodes = Promise.all([
    startCassandra({ dir: join(root, 'cassandra'), jmxExporter: { port: cx } }).then(
      (s) => (cassandra = s),
    ),
    startKafka({ dir: join(root, 'kafka'), heapMb: 256, jmxExporter: { port: kx } }).then(
      (s) => (kafka = s),
    ),
  ]);

  app = standIn();
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as AddressInfo).port;
  const [inbound, metrics, admin] = await freePorts(3);
  inboundPort = inbound as number;
  metricsPort = metrics as number;
  // The compiled sidecar, moved to free ports: its app, inbound and metrics listeners and its admin
  // (which the metrics listener's stats route dials); no egress listeners (clusters only).
  const o = envoyOptions(model, workload);
  const { adminPort: _, ...rest } = o;
  const sdsDir = join(root, 'envoy', 'sds');
  const a = compileEnvoy(model, {
    ...rest,
    inbound: { http: inboundPort },
    app: { http: { address: '127.0.0.1', port: appPort } },
    outbound: Object.fromEntries(
      Object.entries(o.outbound ?? {}).map(([k, { listenPort: __, ...up }]) => [k, up]),
    ),
    metrics: { port: metricsPort, statsPort: admin as number },
    sds: {
      dir: sdsDir,
      certChain: svids.sidecar.cert,
      privateKey: svids.sidecar.key,
      trustBundle: svids.sidecar.truststore,
    },
  });
  mkdirSync(sdsDir, { recursive: true });
  for (const [path, sds] of Object.entries(a.sdsFiles)) writeFileSync(path, JSON.stringify(sds));
  envoy = await startEnvoy({
    dir: join(root, 'envoy'),
    name: 'orders-api-sidecar',
    config: a.bootstrap as unknown as Record<string, unknown>,
    adminPort: admin as number,
  });
  // Each data node's metrics front, as compiled, with the node's SVID.
  for (const node of ['cassandra', 'kafka'] as const) {
    const dir = join(root, `${node}-metrics`);
    const sds = join(dir, 'sds');
    const [adminPort] = (await freePorts(1)) as [number];
    const front = compileDataMetricsProxy(model, {
      service: node,
      listen: { address: '127.0.0.1', port: data[node].front },
      exporterPort: data[node].exporter,
      sds: {
        dir: sds,
        certChain: svids[node].cert,
        privateKey: svids[node].key,
        trustBundle: svids[node].truststore,
      },
    });
    mkdirSync(sds, { recursive: true });
    for (const [path, f] of Object.entries(front.sdsFiles)) writeFileSync(path, JSON.stringify(f));
    data[node].envoy = await startEnvoy({
      dir,
      name: `${node}-metrics`,
      config: front.bootstrap as unknown as Record<string, unknown>,
      adminPort,
    });
  }

  const scrape = compilePrometheusScrape(model, {
    scrapeInterval: '1s',
    tls: {
      caFile: svids.scraper.truststore,
      certFile: svids.scraper.cert,
      keyFile: svids.scraper.key,
    },
    targets: { [workload]: { address: '127.0.0.1', port: metricsPort } },
    dataTargets: {
      cassandra: { address: '127.0.0.1', port: data.cassandra.front },
      kafka: { address: '127.0.0.1', port: data.kafka.front },
    },
    self: false,
  });
  prom = await startPrometheus({
    dir: join(root, 'prometheus'),
    config: stringify({
      ...scrape,
      // Only orders-api's sidecar runs here; the other workloads' jobs would point at nothing.
      scrape_configs: scrape.scrape_configs.filter(
        (j) =>
          j.static_configs[0]?.labels?.['workload'] === workload || j.job_name.startsWith('jmx-'),
      ),
    }),
  });
  // Prometheus was up before the data nodes: their targets turn up as soon as the nodes answer.
  await nodes;
  console.log(
    `[metrics-scrape] data nodes up: cassandra ${cassandra?.startupMs} ms, kafka ${kafka?.startupMs} ms, ${Date.now() - t0} ms into beforeAll`,
  );
}, 240_000);

afterAll(async () => {
  await nodes?.catch(() => undefined);
  await prom?.stop();
  await envoy?.stop();
  await Promise.all([
    data.cassandra?.envoy?.stop(),
    data.kafka?.envoy?.stop(),
    cassandra?.stop(),
    kafka?.stop(),
  ]);
  await new Promise((resolve) => app?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('Prometheus scrapes a compiled sidecar over mTLS, and nobody else may', () => {
  it('promtool accepts the compiled scrape config', async () => {
    const { promtool } = await ensurePrometheus();
    const { stdout } = await runFile(promtool, [
      'check',
      'config',
      join(root, 'prometheus', 'prometheus.yml'),
    ]);
    expect(stdout).toContain('SUCCESS');
  });

  it('the scraper: both targets up, Envoy’s and the app’s metrics in Prometheus', async () => {
    const jobs = ['envoy-orders-api', 'app-orders-api'];
    await waitUntil(
      async () => {
        const up = await prom.query('up');
        return jobs.every((j) => up.some((s) => s.metric['job'] === j && s.value === 1));
      },
      { what: 'up == 1 for both jobs', timeoutMs: 20_000, intervalMs: 250, proc: prom.process },
    );
    const targets = await prom.api<{
      activeTargets: { labels: Record<string, string>; health: string; scrapeUrl: string }[];
    }>('targets?state=active');
    expect(
      targets.activeTargets
        .filter((t) => !t.labels['job']?.startsWith('jmx-'))
        .map((t) => [t.labels['job'], t.health, t.scrapeUrl])
        .sort(),
    ).toEqual([
      ['app-orders-api', 'up', `https://127.0.0.1:${metricsPort}/metrics`],
      ['envoy-orders-api', 'up', `https://127.0.0.1:${metricsPort}/stats/prometheus`],
    ]);
    expect(await prom.query('trellis_standin_up{job="app-orders-api"}')).toMatchObject([
      { value: 1 },
    ]);
    // Envoy's own series, through the metrics route to its admin interface.
    expect(await prom.query('envoy_server_live{job="envoy-orders-api"}')).toMatchObject([
      { value: 1 },
    ]);
  });

  it('the scraper’s SVID, directly: both paths answer 200', async () => {
    const stats = await mtls(metricsPort, '/stats/prometheus', svids.scraper);
    expect(stats.status).toBe(200);
    expect(stats.body).toContain('envoy_server_live');
    expect(await mtls(metricsPort, '/metrics', svids.scraper)).toMatchObject({
      status: 200,
      body: expect.stringContaining('trellis_standin_up 1'),
    });
  });

  it('another workload’s SVID fails the handshake', async () => {
    // The SAN matcher refuses it with TLS alert 46 before any HTTP.
    await expect(mtls(metricsPort, '/stats/prometheus', svids.ledger)).rejects.toThrow(
      /certificate unknown/,
    );
    await expect(mtls(metricsPort, '/metrics', svids.ledger)).rejects.toThrow(
      /certificate unknown/,
    );
  });

  it('no client certificate, or plaintext, gets nothing', async () => {
    await expect(mtls(metricsPort, '/stats/prometheus', undefined)).rejects.toThrow();
    await expect(
      fetch(`http://127.0.0.1:${metricsPort}/stats/prometheus`, {
        signal: AbortSignal.timeout(5_000),
      }),
    ).rejects.toThrow();
  });

  it('the scraper may GET the metrics paths only: other paths and methods are 403', async () => {
    expect((await mtls(metricsPort, '/orders/1', svids.scraper)).status).toBe(403);
    expect((await mtls(metricsPort, '/stats', svids.scraper)).status).toBe(403);
    expect((await mtls(metricsPort, '/stats/prometheus', svids.scraper, 'POST')).status).toBe(403);
  });

  it('the scraper is no caller of the app: the mesh port refuses its SVID', async () => {
    // The inbound listener admits orders-api's callers (the ingress) only, by SAN at the handshake.
    await expect(mtls(inboundPort, '/metrics', svids.scraper)).rejects.toThrow(
      /certificate unknown/,
    );
  });
});

/** A plain TCP connect: resolves true when something accepts, false when refused. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.setTimeout(3_000, () => (sock.destroy(), resolve(false)));
    sock.on('connect', () => (sock.destroy(), resolve(true)));
    sock.on('error', () => resolve(false));
  });
}

describe('Cassandra’s and Kafka’s JMX metrics: Prometheus over mTLS through each node’s front, nobody else', () => {
  it('the scraper: both jmx targets up over https, a named metric of each in Prometheus', async () => {
    await waitUntil(
      async () => {
        const up = await prom.query('up{job=~"jmx-.*"}');
        // Cassandra registers its client-request metrics a moment after CQL first answers, so a
        // scrape right after its start can be up without them: wait for the series too.
        const reads = await prom.query('cassandra_client_requests_total{job="jmx-cassandra"}');
        return up.filter((s) => s.value === 1).length === 2 && reads.length > 0;
      },
      {
        what: 'up == 1 for jmx-cassandra and jmx-kafka, and Cassandra’s client-request series',
        timeoutMs: 20_000,
        intervalMs: 250,
        proc: prom.process,
      },
    );
    const targets = await prom.api<{
      activeTargets: { labels: Record<string, string>; health: string; scrapeUrl: string }[];
    }>('targets?state=active');
    expect(
      targets.activeTargets
        .filter((t) => t.labels['job']?.startsWith('jmx-'))
        .map((t) => [t.labels['job'], t.health, t.scrapeUrl])
        .sort(),
    ).toEqual([
      ['jmx-cassandra', 'up', `https://127.0.0.1:${data.cassandra.front}/metrics`],
      ['jmx-kafka', 'up', `https://127.0.0.1:${data.kafka.front}/metrics`],
    ]);
    // A rule of each node's config, through the agent: Cassandra's coordinator reads, Kafka's
    // under-replicated partitions (0 on one broker) and its produce-request count.
    expect(
      await prom.query('cassandra_client_requests_total{job="jmx-cassandra",scope="Read"}'),
    ).toHaveLength(1);
    expect(
      await prom.query('kafka_server_under_replicated_partitions{job="jmx-kafka"}'),
    ).toMatchObject([{ value: 0 }]);
    expect(
      await prom.query('kafka_network_requests_total{job="jmx-kafka",request="Produce"}'),
    ).toHaveLength(1);
  });

  it('has every series the Cassandra and Kafka consoles read (ADR 0024)', async () => {
    for (const [job, names] of [
      ['jmx-cassandra', consoleSourceMetrics.cassandra],
      ['jmx-kafka', consoleSourceMetrics.kafka],
    ] as const)
      for (const name of names)
        expect(
          (await prom.query(`${name}{job="${job}"}`)).length,
          `${name}{job="${job}"}`,
        ).toBeGreaterThan(0);
  });

  it('the scraper’s SVID, directly: 200 with the rules’ metrics', async () => {
    const c = await mtls(
      data.cassandra.front,
      '/metrics',
      svids.scraper,
      'GET',
      dataMetricsServerName(model, 'cassandra'),
    );
    expect(c.status).toBe(200);
    expect(c.body).toContain('cassandra_client_request_latency_seconds');
    const k = await mtls(
      data.kafka.front,
      '/metrics',
      svids.scraper,
      'GET',
      dataMetricsServerName(model, 'kafka'),
    );
    expect(k.status).toBe(200);
    expect(k.body).toContain('kafka_server_messages_in_total');
  });

  it('another workload’s SVID, or none, is refused at the front; other paths and methods are 403', async () => {
    for (const node of ['cassandra', 'kafka'] as const) {
      const name = dataMetricsServerName(model, node);
      await expect(mtls(data[node].front, '/metrics', svids.ledger, 'GET', name)).rejects.toThrow(
        /certificate unknown/,
      );
      // The data node's own SVID is no scraper either.
      await expect(mtls(data[node].front, '/metrics', svids[node], 'GET', name)).rejects.toThrow(
        /certificate unknown/,
      );
      await expect(mtls(data[node].front, '/metrics', undefined, 'GET', name)).rejects.toThrow();
      expect((await mtls(data[node].front, '/metrics', svids.scraper, 'POST', name)).status).toBe(
        403,
      );
      expect((await mtls(data[node].front, '/', svids.scraper, 'GET', name)).status).toBe(403);
    }
  });

  it('the exporter itself listens on 127.0.0.1 only (the pod’s own loopback in a pod)', async () => {
    for (const node of ['cassandra', 'kafka'] as const) {
      // Loopback answers (plaintext, inside the node's namespace)…
      expect(await accepts('127.0.0.1', data[node].exporter)).toBe(true);
      // …another address of the same machine does not (bound to 0.0.0.0 it would).
      expect(await accepts('127.0.0.2', data[node].exporter)).toBe(false);
    }
  });
});
