/**
 * The trace pipeline (ADR 0023), real parts only: a real Jaeger (in-memory store, query API on
 * 127.0.0.1), a real OpenTelemetry Collector (OTLP/HTTP receiver with TLS and Mesh CA client
 * certificates, mTLS to Jaeger) behind its compiled mTLS front (a real Envoy), and the edge's
 * sidecar and orders-api's sidecar as `compileEnvoy` makes them from the reference model, tracing
 * with the OpenTelemetry tracer. Only addresses change (free loopback ports) and the certificates
 * come from a throwaway CA; a second CA plays a foreign one.
 *
 * First the right callers work: a request through the edge sidecar with a traceparent is a span in
 * Jaeger under that trace id; an OTLP export presenting a workload's certificate is accepted and
 * readable from Jaeger; the app's plaintext export to its sidecar's telemetry egress arrives too.
 * Then the wrong ones are refused: no client certificate, a foreign CA's certificate with a
 * workload's SPIFFE ID, the metrics scraper's and the collector's own identity (no workloads), a
 * method other than POST and another OTLP path; and the collector's receiver refuses plaintext.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CertificateAuthority,
  freePorts,
  ManagedProcess,
  startEnvoy,
  startNginx,
  waitUntil,
  writePemFiles,
  type EnvoyInstance,
  type PemFiles,
} from '@trellis/local/harness';
import { jaeger, otelcol } from '@trellis/local/toolchain';
import {
  bindOrThrow,
  collectorServerName,
  collectorSpiffeId,
  compileCollectorFront,
  compileEnvoy,
  compileJaegerConfig,
  compileNginxHttp,
  compileOtelCollectorConfig,
  envoyOptions,
  jaegerServerName,
  parseModel,
  scraperSpiffeId,
  spiffeId,
  type BoundModel,
  type EnvoyArtefacts,
} from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'trellis-tracing-'));

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
type Who = 'ingress' | 'ordersApi' | 'collector' | 'jaeger' | 'scraper' | 'foreign' | 'nginx';
const svids = {} as Record<Who, PemFiles>;
let ca: CertificateAuthority;
const procs: ManagedProcess[] = [];
const envoys: EnvoyInstance[] = [];
const port = {} as Record<
  | 'jaegerOtlp'
  | 'jaegerQuery'
  | 'jaegerQueryGrpc'
  | 'receiver'
  | 'front'
  | 'edgeInbound'
  | 'egress'
  | 'nginx',
  number
>;
let jaegerUrl = '';
/** The Jaeger and collector processes, for their listening sockets. */
const pipeline = {} as Record<'jaeger' | 'collector', ManagedProcess>;

/** A fresh W3C trace id (32 lowercase hex). */
const traceId = () => randomBytes(16).toString('hex');

/** An OTLP/HTTP JSON export of one span in `trace`, from service `service`. */
function otlpBody(trace: string, service: string): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'trellis-test' },
            spans: [
              {
                traceId: trace,
                spanId: randomBytes(8).toString('hex'),
                name: 'test-span',
                kind: 2,
                startTimeUnixNano: String(now - 1_000_000n),
                endTimeUnixNano: String(now),
              },
            ],
          },
        ],
      },
    ],
  });
}

/** An HTTPS request with a client certificate (or none); rejects on a TLS or connection failure. */
function mtls(
  p: number,
  opts: { who?: PemFiles; method?: string; path?: string; body?: string; servername?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: p,
        path: opts.path ?? '/v1/traces',
        method: opts.method ?? 'POST',
        servername: opts.servername ?? collectorServerName(model),
        ca: ca.rootPem,
        ...(opts.who ? { cert: readFileSync(opts.who.cert), key: readFileSync(opts.who.key) } : {}),
        headers: { 'content-type': 'application/json' },
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
    req.end(opts.body);
  });
}

/** A plaintext HTTP request to 127.0.0.1. */
function plain(
  p: number,
  opts: { method?: string; path: string; body?: string; headers?: Record<string, string> },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: p,
        path: opts.path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
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
    req.end(opts.body);
  });
}

interface JaegerTrace {
  spans: {
    spanID: string;
    operationName: string;
    processID: string;
    references?: { refType: string; traceID: string; spanID: string }[];
  }[];
  processes: Record<string, { serviceName: string }>;
}

/** The trace Jaeger holds under `trace`, or undefined (404) while it has none. */
async function jaegerTrace(trace: string): Promise<JaegerTrace | undefined> {
  const res = await fetch(`${jaegerUrl}/api/traces/${trace}`, {
    signal: AbortSignal.timeout(3_000),
  });
  if (res.status === 404) {
    await res.text();
    return undefined;
  }
  const body = (await res.json()) as { data?: JaegerTrace[] };
  return body.data?.[0];
}

/** The services of the spans Jaeger holds for `trace` ([] while it has none). */
async function servicesIn(trace: string): Promise<string[]> {
  const t = await jaegerTrace(trace);
  if (!t) return [];
  return t.spans.map((s) => t.processes[s.processID]?.serviceName ?? '?');
}

/** Waits until Jaeger holds a span of `service` in `trace`. */
async function waitForSpan(trace: string, service: string): Promise<void> {
  await waitUntil(async () => (await servicesIn(trace)).includes(service), {
    what: `a span of ${service} in trace ${trace} in Jaeger`,
    timeoutMs: 15_000,
    intervalMs: 200,
  });
}

/** Starts a Go binary of the pipeline with `--config <dir>/config.yaml`. */
function startGo(name: string, command: string, config: Record<string, unknown>): ManagedProcess {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), `${JSON.stringify(config, null, 2)}\n`);
  const p = ManagedProcess.start({
    name,
    command,
    args: ['--config', join(dir, 'config.yaml')],
    dir,
    stopGraceMs: 5_000,
  });
  procs.push(p);
  return p;
}

/** Writes a compiled Envoy's SDS files and starts it (spans flushed every 200 ms, not 5 s). */
async function startCompiled(
  name: string,
  a: EnvoyArtefacts,
  sdsDir: string,
): Promise<EnvoyInstance> {
  mkdirSync(sdsDir, { recursive: true });
  for (const [path, sds] of Object.entries(a.sdsFiles)) writeFileSync(path, JSON.stringify(sds));
  const { admin: _, ...config } = a.bootstrap;
  const e = await startEnvoy({
    dir: join(root, name),
    name,
    config: {
      ...config,
      // Test only: Envoy's OpenTelemetry tracer flushes every 5 s or 5 spans by default.
      layered_runtime: {
        layers: [
          {
            name: 'test',
            static_layer: {
              'tracing.opentelemetry.flush_interval_ms': 200,
              'tracing.opentelemetry.min_flush_spans': 1,
            },
          },
        ],
      },
    } as unknown as Record<string, unknown>,
  });
  envoys.push(e);
  return e;
}

const pemOf = (f: PemFiles) => ({ cert: f.cert, key: f.key, ca: f.truststore });

beforeAll(async () => {
  const t0 = Date.now();
  ca = await CertificateAuthority.create({ commonName: 'trellis tracing test root' });
  const foreignCa = await CertificateAuthority.create({ commonName: 'not the mesh' });
  const pki = join(root, 'pki');
  const collector = collectorSpiffeId(model) ?? '';
  const issue = async (name: Who, uri: string, dns: string[] = [], by = ca) => {
    const cert = await by.issue({ uris: [uri], dns, validDays: 1 });
    svids[name] = writePemFiles(join(pki, name), name, cert, by.rootPem);
  };
  await issue('ingress', spiffeId(model, 'ingress'));
  await issue('ordersApi', spiffeId(model, 'orders-api'));
  await issue('collector', collector, [collectorServerName(model) ?? '']);
  await issue('jaeger', 'spiffe://trellis.local/ns/trellis/sa/jaeger', [jaegerServerName(model)]);
  await issue('scraper', scraperSpiffeId(model) ?? '');
  await issue('foreign', spiffeId(model, 'orders-api'), [], foreignCa);
  const nginxCert = await ca.issue({ commonName: 'localhost', dns: ['localhost'], validDays: 1 });
  svids.nginx = writePemFiles(join(pki, 'nginx'), 'nginx', nginxCert, ca.rootPem);

  const ports = await freePorts(8);
  [
    port.jaegerOtlp,
    port.jaegerQuery,
    port.jaegerQueryGrpc,
    port.receiver,
    port.front,
    port.edgeInbound,
    port.egress,
    port.nginx,
  ] = ports as [number, number, number, number, number, number, number, number];
  jaegerUrl = `http://127.0.0.1:${port.jaegerQuery}`;
  const [jaegerBin, otelcolBin] = await Promise.all([jaeger.ensure(), otelcol.ensure()]);

  const j = (pipeline.jaeger = startGo(
    'jaeger',
    jaegerBin,
    compileJaegerConfig(model, {
      otlpGrpcPort: port.jaegerOtlp,
      queryHttpPort: port.jaegerQuery,
      queryGrpcPort: port.jaegerQueryGrpc,
      pem: pemOf(svids.jaeger),
    }),
  ));
  const c = (pipeline.collector = startGo(
    'otelcol',
    otelcolBin,
    compileOtelCollectorConfig(model, {
      receiverPort: port.receiver,
      jaeger: { address: '127.0.0.1', port: port.jaegerOtlp },
      pem: pemOf(svids.collector),
      batchTimeout: '100ms',
    }),
  ));
  const sdsOf = (who: PemFiles, dir: string) => ({
    dir,
    certChain: who.cert,
    privateKey: who.key,
    trustBundle: who.truststore,
  });
  const frontSds = join(root, 'front', 'sds');
  await startCompiled(
    'front',
    compileCollectorFront(model, {
      listen: { address: '127.0.0.1', port: port.front },
      receiverPort: port.receiver,
      sds: sdsOf(svids.collector, frontSds),
    }),
    frontSds,
  );
  // The edge sidecar as compiled, its outbound clusters kept (no listener), tracing to the front.
  const strip = (w: string) => {
    const o = envoyOptions(model, w);
    const { adminPort: _, ...rest } = o;
    return {
      ...rest,
      outbound: Object.fromEntries(
        Object.entries(o.outbound ?? {}).map(([k, { listenPort: __, ...up }]) => [k, up]),
      ),
    };
  };
  const edgeSds = join(root, 'ingress', 'sds');
  await startCompiled(
    'ingress',
    compileEnvoy(model, {
      ...strip('ingress'),
      inbound: { http: port.edgeInbound },
      tracing: { collector: { address: '127.0.0.1', port: port.front } },
      sds: sdsOf(svids.ingress, edgeSds),
    }),
    edgeSds,
  );
  // orders-api's sidecar for its telemetry egress (its inbound on a port nobody calls here).
  const [inbound, app] = (await freePorts(2)) as [number, number];
  const apiSds = join(root, 'orders-api', 'sds');
  await startCompiled(
    'orders-api',
    compileEnvoy(model, {
      ...strip('orders-api'),
      inbound: { http: inbound },
      app: { http: { address: '127.0.0.1', port: app } },
      tracing: { collector: { address: '127.0.0.1', port: port.front }, egressPort: port.egress },
      sds: sdsOf(svids.ordersApi, apiSds),
    }),
    apiSds,
  );
  // nginx as compiled, in front of the edge sidecar.
  const n = await startNginx({
    dir: join(root, 'nginx'),
    name: 'nginx',
    config: compileNginxHttp(model, {
      listen: { address: '127.0.0.1', port: port.nginx },
      tls: { certificate: svids.nginx.cert, key: svids.nginx.key },
      upstream: { address: '127.0.0.1', port: port.edgeInbound },
    }),
  });
  procs.push(n.process);
  await waitUntil(
    async () => {
      const res = await fetch(`${jaegerUrl}/api/services`, { signal: AbortSignal.timeout(2_000) });
      await res.text();
      return res.status === 200;
    },
    { what: 'Jaeger /api/services', timeoutMs: 30_000, intervalMs: 100, proc: j },
  );
  // The collector's receiver: a TLS handshake without a client certificate fails once it listens.
  await waitUntil(
    async () => {
      try {
        await mtls(port.receiver, { who: svids.collector, body: otlpBody(traceId(), 'probe') });
        return true;
      } catch {
        return false;
      }
    },
    { what: 'the collector receiver', timeoutMs: 30_000, intervalMs: 100, proc: c },
  );
  console.log(`[tracing] pipeline up in ${Date.now() - t0} ms`);
}, 120_000);

afterAll(async () => {
  await Promise.all([...envoys.map((e) => e.stop()), ...procs.map((p) => p.stop())]);
  rmSync(root, { recursive: true, force: true });
});

/** A GET through nginx (TLS, Host localhost) with a client's own traceparent; the X-Request-Id. */
function throughNginx(
  path: string,
  clientTraceparent: string,
): Promise<{ status: number; id: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: port.nginx,
        path,
        method: 'GET',
        servername: 'localhost',
        headers: { host: 'localhost', traceparent: clientTraceparent },
        ca: ca.rootPem,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, id: String(res.headers['x-request-id'] ?? '') }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('traces through the mesh (ADR 0023)', () => {
  it("nginx starts the trace: its request id is the trace id, the client's traceparent is dropped", async () => {
    const client = traceId();
    const r = await throughNginx('/orders/o-1', `00-${client}-${client.slice(0, 16)}-01`);
    // The edge sidecar routed it to orders-api, which is not running here: 503, but a span.
    expect(r.status).toBe(503);
    expect(r.id).toMatch(/^[0-9a-f]{32}$/);
    await waitForSpan(r.id, 'ingress-sidecar');
    const t = await jaegerTrace(r.id);
    const edge = t?.spans.find((s) => t.processes[s.processID]?.serviceName === 'ingress-sidecar');
    // Its parent is nginx's span: the request id's last 16 hex digits.
    expect(edge?.references).toContainEqual({
      refType: 'CHILD_OF',
      traceID: r.id,
      spanID: r.id.slice(16),
    });
    expect(await jaegerTrace(client)).toBeUndefined();
  });

  it('a request through the edge sidecar is a span in Jaeger under the traceparent nginx set', async () => {
    const trace = traceId();
    const parent = trace.slice(16);
    const r = await plain(port.edgeInbound, {
      path: '/no-such-route',
      headers: { traceparent: `00-${trace}-${parent}-01` },
    });
    expect(r.status).toBe(404);
    await waitForSpan(trace, 'ingress-sidecar');
    // Both query APIs hold it.
    const v3 = await fetch(`${jaegerUrl}/api/v3/traces/${trace}`);
    expect(v3.status).toBe(200);
    expect(await v3.text()).toContain('ingress-sidecar');
  });

  it("accepts an OTLP export with a workload's certificate at the front", async () => {
    const trace = traceId();
    const r = await mtls(port.front, { who: svids.ordersApi, body: otlpBody(trace, 'orders-api') });
    expect(r.status).toBe(200);
    await waitForSpan(trace, 'orders-api');
  });

  it("carries the app's plaintext export through its sidecar's telemetry egress", async () => {
    const trace = traceId();
    const r = await plain(port.egress, {
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      body: otlpBody(trace, 'orders-api-app'),
    });
    expect(r.status).toBe(200);
    await waitForSpan(trace, 'orders-api-app');
    // Only the trace export: anything else on the egress is a 404 from the sidecar.
    expect((await plain(port.egress, { path: '/v1/traces' })).status).toBe(404);
    expect(
      (await plain(port.egress, { method: 'POST', path: '/v1/metrics', body: '{}' })).status,
    ).toBe(404);
  });

  it('refuses an export without a client certificate or with a foreign CA’s', async () => {
    const body = otlpBody(traceId(), 'intruder');
    await expect(mtls(port.front, { body })).rejects.toThrow();
    await expect(mtls(port.front, { who: svids.foreign, body })).rejects.toThrow();
  });

  it('refuses the mesh identities that are no workloads: the scraper, the collector itself', async () => {
    const body = otlpBody(traceId(), 'intruder');
    await expect(mtls(port.front, { who: svids.scraper, body })).rejects.toThrow();
    await expect(mtls(port.front, { who: svids.collector, body })).rejects.toThrow();
  });

  it('refuses a workload anything but POST /v1/traces', async () => {
    const get = await mtls(port.front, { who: svids.ordersApi, method: 'GET' });
    expect(get.status).toBe(403);
    const metrics = await mtls(port.front, {
      who: svids.ordersApi,
      path: '/v1/metrics',
      body: '{}',
    });
    expect(metrics.status).toBe(403);
  });

  it("the collector's own receiver refuses plaintext and a certificate from another CA", async () => {
    // Plaintext gets Go's TLS server's own 400 ("an HTTP request to an HTTPS server") or a reset.
    const outcome = await plain(port.receiver, {
      method: 'POST',
      path: '/v1/traces',
      headers: { 'content-type': 'application/json' },
      body: otlpBody(traceId(), 'intruder'),
    }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([400, 'refused']).toContain(outcome);
    await expect(mtls(port.receiver, { who: svids.foreign, body: '{}' })).rejects.toThrow();
  });

  it('Jaeger and the collector listen on 127.0.0.1 only, on the configured ports and no others', () => {
    // `ss -ltnpH`: every listening TCP socket with its process (iproute2, which pods need anyway).
    const sockets = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n');
    const of = (p: ManagedProcess) =>
      sockets
        .filter((l) => l.includes(`pid=${p.pid},`))
        .map((l) => l.trim().split(/\s+/)[3] ?? '')
        .sort();
    expect(of(pipeline.jaeger)).toEqual(
      [port.jaegerOtlp, port.jaegerQuery, port.jaegerQueryGrpc].map((p) => `127.0.0.1:${p}`).sort(),
    );
    expect(of(pipeline.collector)).toEqual([`127.0.0.1:${port.receiver}`]);
  });
});
