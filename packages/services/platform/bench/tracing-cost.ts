/**
 * CPU cost of tracing in the services' hot paths, on vs off, paired and interleaved in one process:
 *   http     orders-api's POST shape: createHttpApp + authenticate + one intake record published
 *            under the request's span (Publisher with an acking stand-in producer), driven by inject
 *            with the sidecar's `traceparent`; on = SERVER span + `send` span + header + log traceId;
 *   consume  ledger's per-record shape: extract the record's `traceparent`, `process` span, the
 *            Cassandra upsert's span around a resolved promise (the store's I/O is not measured).
 * "On" exports for real: a BatchSpanProcessor sends OTLP/HTTP (JSON) to a sink in a child process
 * (not measured) that answers 200, and each "on" section ends with a flush, so the export's CPU
 * (serialisation, HTTP) lands in the section that caused it. `BENCH_EXPORTER=none` drops the spans
 * instead: what the SDK and the hooks cost without the export. CPU = process.cpuUsage() (user + sys) of
 * this process around each section. Bounded: ROUNDS rounds of N operations per mode and scenario; the
 * first mode alternates each round. Run under the component lock:
 *   flock /work/notes/component.lock node packages/services/platform/bench/tracing-cost.ts
 */
import { fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type kafkajs from 'kafkajs';
import type { ProducerRecord } from 'kafkajs';
import { Writable } from 'node:stream';
import { authenticate, createHttpApp, traceContext } from '../src/http.ts';
import { identityDefaults } from '../src/identity.ts';
import { Publisher } from '../src/publisher.ts';
import { KafkaOrderPublisher } from '../src/queue.ts';
import { Tracing, cassandraSpan, processSpan, type TracingOptions } from '../src/tracing.ts';

type SpanExporter = NonNullable<TracingOptions['exporter']>;
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';

const N = Number(process.env.BENCH_N ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);

function ackingKafka(): kafkajs.Kafka {
  const producer = {
    events: { CONNECT: 'c', DISCONNECT: 'd' },
    on: () => () => undefined,
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: async (_r: ProducerRecord) => [],
  };
  return { producer: () => producer } as unknown as kafkajs.Kafka;
}

/** Logs are on in the services; here they go to a sink stream that drops them. */
const devNull = new Writable({
  write(_c, _e, cb) {
    cb();
  },
});

const record: OrderAccepted = {
  type: 'order.accepted',
  version: 1,
  order: {
    id: '0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
    sku: 'A-1',
    quantity: 1,
    subject: 'alice',
    createdAt: '2026-12-07T00:00:00.000Z',
  },
  requestHash: null,
  subject: 'alice',
  requestId: 'req-1',
};

/** `BENCH_EXPORTER=none`: spans are made and batched but dropped, to split the SDK's cost from the export's. */
const DROP = process.env.BENCH_EXPORTER === 'none';
/** `BENCH_EXPORTER=json`: OTLP/HTTP JSON instead of the default protobuf. */
const PROTOCOL = process.env.BENCH_EXPORTER === 'json' ? 'http/json' : 'http/protobuf';
const dropping: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => undefined,
};
const tracingTo = (serviceName: string, endpoint: string): TracingOptions =>
  DROP ? { serviceName, exporter: dropping } : { serviceName, endpoint, protocol: PROTOCOL };

async function httpApp(endpoint: string | undefined) {
  const app = createHttpApp({
    service: 'orders-api',
    log: { stream: devNull },
    readiness: () => ({}),
    ...(endpoint ? { tracing: tracingTo('orders-api', endpoint) } : {}),
  });
  const queue = new KafkaOrderPublisher(
    new Publisher(ackingKafka(), { topic: 'orders.intake.v1', tracing: app.tracing }, app.log),
  );
  await app.register(async (scoped) => {
    scoped.addHook('onRequest', authenticate(identityDefaults));
    scoped.post('/orders', async (req, reply) => {
      await queue.publish(record, traceContext(req));
      req.log.info({ orderId: record.order.id }, 'order accepted');
      return reply.code(202).send(record.order);
    });
  });
  await app.ready();
  return app;
}

const headers = {
  'x-jwt-payload': Buffer.from('{"sub":"alice","azp":"web"}').toString('base64url'),
  'content-type': 'application/json',
};
const body = JSON.stringify({ sku: 'A-1', quantity: 1 });
const hex = (n: number): string => n.toString(16).padStart(32, '0');

async function main(): Promise<void> {
  const sink = fork(new URL(import.meta.url).pathname, ['sink'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) =>
    sink.once('message', (p) => resolve(Number(p))),
  );
  const endpoint = `http://127.0.0.1:${port}/v1/traces`;
  try {
    const apps = { off: await httpApp(undefined), on: await httpApp(endpoint) };
    const tracers = {
      off: Tracing.off,
      on: Tracing.create(tracingTo('ledger', endpoint)),
    };
    let seq = 0;
    const runHttp = async (mode: 'off' | 'on'): Promise<number> => {
      const app = apps[mode];
      const t0 = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        const traceparent = `00-${hex(++seq)}-00f067aa0ba902b7-01`;
        const res = await app.inject({
          method: 'POST',
          url: '/orders',
          headers: { ...headers, traceparent, 'x-request-id': `r-${seq}` },
          payload: body,
        });
        if (res.statusCode !== 202) throw new Error(`status ${res.statusCode}`);
      }
      await app.tracing.flush();
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / N;
    };
    const upsert = cassandraSpan('INSERT', 'ledger', 'order_entries');
    const runConsume = async (mode: 'off' | 'on'): Promise<number> => {
      const tracing = tracers[mode];
      const t0 = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        const msgHeaders = { traceparent: Buffer.from(`00-${hex(++seq)}-00f067aa0ba902b7-01`) };
        const { name, options } = processSpan('kafka', 'orders.v1', { 'kafka.offset': i });
        await tracing.inSpan(name, options, tracing.extract(msgHeaders), (_s, ctx) =>
          tracing.inSpan(upsert.name, upsert.options, ctx, async () => undefined),
        );
      }
      await tracing.flush();
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / N;
    };
    const scenarios = { http: runHttp, consume: runConsume } as const;
    const results: Record<string, { on: number[]; off: number[] }> = {
      http: { on: [], off: [] },
      consume: { on: [], off: [] },
    };
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      for (const [name, run] of Object.entries(scenarios)) {
        const order: ('on' | 'off')[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
        for (const mode of order) {
          const us = await run(mode);
          if (round >= WARMUP) results[name]?.[mode].push(us);
        }
      }
    }
    const summary = Object.fromEntries(
      Object.entries(results).map(([name, r]) => {
        const diffs = r.on.map((v, i) => v - (r.off[i] ?? 0));
        return [
          name,
          {
            offUsPerOp: round2(median(r.off)),
            onUsPerOp: round2(median(r.on)),
            pairedDiffUsMedian: round2(median(diffs)),
            pairedDiffUsP25: round2(quantile(diffs, 0.25)),
            pairedDiffUsP75: round2(quantile(diffs, 0.75)),
            roundsOnCostlier: diffs.filter((d) => d > 0).length,
            rounds: diffs.length,
          },
        ];
      }),
    );
    // Proof that "on" exported for real: the sink's count of OTLP requests and bytes.
    sink.send('count');
    const received = await new Promise<unknown>((resolve) => sink.once('message', resolve));
    process.stdout.write(
      `${JSON.stringify({ n: N, warmup: WARMUP, rounds: ROUNDS, node: process.version, summary, exporter: DROP ? 'none' : PROTOCOL, sink: received }, null, 2)}\n`,
    );
    await apps.on.close();
    await apps.off.close();
    await tracers.on.shutdown();
  } finally {
    sink.kill();
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] ?? 0) + ((s[hi] ?? 0) - (s[lo] ?? 0)) * (pos - lo);
}
const median = (xs: number[]): number => quantile(xs, 0.5);
const round2 = (x: number): number => Math.round(x * 100) / 100;

// The sink: a child process, so its CPU is not this process's.
if (process.argv[2] === 'sink') {
  let exports = 0;
  let bytes = 0;
  process.on('message', () => process.send?.({ exports, bytes }));
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.((server.address() as AddressInfo).port);
  });
} else {
  await main();
}
