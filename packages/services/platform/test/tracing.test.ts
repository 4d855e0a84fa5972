/**
 * Traces with the SDK's InMemorySpanExporter: the request's SERVER span continues the incoming
 * `traceparent`, a record produced under it carries the `send` span's `traceparent`, and with tracing
 * off nothing is recorded or added. The produce request is a stand-in kafkajs producer that acks (a
 * real broker is in the services' component tests), as in publisher.test.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import type kafkajs from 'kafkajs';
import type { Message, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigError, Env } from '../src/env.ts';
import { tracingFromEnv } from '../src/config.ts';
import { envProblems, tracingEnvSchema } from '../src/env-schema.ts';
import { authenticate, createHttpApp, traceContext } from '../src/http.ts';
import { identityDefaults } from '../src/identity.ts';
import { Publisher } from '../src/publisher.ts';
import { KafkaOrderPublisher, SqsOrderPublisher, type SqsOrderQueue } from '../src/queue.ts';
import { ROOT_CONTEXT, SpanKind, Tracing } from '../src/tracing.ts';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const EDGE_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${TRACE_ID}-${EDGE_SPAN}-01`;
const TOKEN_PAYLOAD = Buffer.from('{"sub":"alice","azp":"web"}').toString('base64url');

/** A kafkajs client whose connected producer acks every produce request, and keeps what it sent. */
function ackingKafka(sent: Message[]): kafkajs.Kafka {
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: () => () => undefined,
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: async (r: ProducerRecord) => {
      sent.push(...r.messages);
      return [];
    },
  };
  return { producer: () => producer } as unknown as kafkajs.Kafka;
}

function lines(): { stream: Writable; read: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const read = () =>
    chunks
      .join('')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, read };
}

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

/** An app that authenticates, then publishes one intake record under the request's span. */
async function tracedApp(exporter: InMemorySpanExporter | undefined, sent: Message[]) {
  const log = lines();
  const app = createHttpApp({
    service: 'orders-api',
    log: { stream: log.stream },
    readiness: () => ({}),
    ...(exporter ? { tracing: { serviceName: 'orders-api', exporter } } : {}),
  });
  const publisher = new Publisher(
    ackingKafka(sent),
    { topic: 'orders.intake.v1', tracing: app.tracing },
    app.log,
  );
  const queue = new KafkaOrderPublisher(publisher);
  await app.register(async (scoped) => {
    scoped.addHook('onRequest', authenticate(identityDefaults));
    scoped.post('/orders', async (req, reply) => {
      await queue.publish(record, traceContext(req));
      req.log.info('order accepted');
      return reply.code(202).send({});
    });
  });
  return { app, log };
}

function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const s = spans.find((x) => x.name === name);
  if (!s) throw new Error(`no span ${name} in ${spans.map((x) => x.name).join(', ')}`);
  return s;
}

describe('tracing on', () => {
  it('continues the incoming traceparent in a SERVER span, and the produced record carries the send span', async () => {
    const exporter = new InMemorySpanExporter();
    const sent: Message[] = [];
    const { app, log } = await tracedApp(exporter, sent);
    const res = await app.inject({
      method: 'POST',
      url: '/orders?access_token=secret-token',
      headers: { traceparent, 'x-jwt-payload': TOKEN_PAYLOAD, 'x-request-id': 'req-1' },
      payload: {},
    });
    expect(res.statusCode).toBe(202);
    await app.tracing.flush();
    const spans = exporter.getFinishedSpans();

    const server = byName(spans, 'POST /orders');
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(server.parentSpanContext?.spanId).toBe(EDGE_SPAN);
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/orders',
      'url.path': '/orders',
      'http.response.status_code': 202,
      'user.id': 'alice',
      'trellis.caller.client': 'web',
      'trellis.request.id': 'req-1',
    });
    expect(server.resource.attributes['service.name']).toBe('orders-api');

    const send = byName(spans, 'send orders.intake.v1');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(send.attributes).toMatchObject({
      'messaging.system.name': 'kafka',
      'messaging.destination.name': 'orders.intake.v1',
      'kafka.message.key': record.order.id,
    });

    // The record carries the send span's context (so the writer continues it) and the request id.
    expect(sent).toHaveLength(1);
    expect(sent[0]?.headers).toMatchObject({
      'x-request-id': 'req-1',
      traceparent: `00-${TRACE_ID}-${send.spanContext().spanId}-01`,
    });

    // Neither the token in the query nor the identity header reaches a span or a log line.
    const everything = JSON.stringify([spans.map((s) => s.attributes), log.read()]);
    expect(everything).not.toContain('secret-token');
    expect(everything).not.toContain(TOKEN_PAYLOAD);
    // Every line of the request carries the trace id.
    const requestLines = log.read().filter((l) => l.requestId === 'req-1');
    expect(requestLines.map((l) => l.msg)).toEqual(['order accepted', 'request completed']);
    for (const l of requestLines) expect(l.traceId).toBe(TRACE_ID);
    await app.close();
  });

  it('starts a new trace without a traceparent, marks 5xx as errors, and leaves probes untraced', async () => {
    const exporter = new InMemorySpanExporter();
    const app = createHttpApp({
      service: 's',
      log: false,
      readiness: () => ({ db: false }),
      tracing: { serviceName: 's', exporter },
    });
    app.get('/boom', async () => {
      throw new Error('kaput');
    });
    expect((await app.inject({ method: 'GET', url: '/boom' })).statusCode).toBe(500);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404);
    await app.tracing.flush();
    const spans = exporter.getFinishedSpans();
    // An unknown path is named by its method only (no route; paths would explode the span names).
    expect(spans.map((s) => s.name)).toEqual(['GET /boom', 'GET']);
    const [boom] = spans;
    expect(boom?.parentSpanContext).toBeUndefined();
    expect(boom?.status.code).toBe(2); // ERROR
    expect(boom?.attributes['http.response.status_code']).toBe(500);
    expect(boom?.events.map((e) => e.name)).toContain('exception');
    await app.close();
  });

  it('puts the send span on an SQS message as the traceparent attribute', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create({ serviceName: 'orders-api', exporter });
    const published: { dedupId: string; trace: Record<string, string> | undefined }[] = [];
    const stub = {
      name: 'orders.fifo',
      publish: async (_e: OrderAccepted, dedupId: string, trace?: Record<string, string>) => {
        published.push({ dedupId, trace });
      },
      close: () => undefined,
    } as unknown as SqsOrderQueue;
    const parentSpan = tracing.startSpan('POST /orders', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    await new SqsOrderPublisher(stub, tracing).publish(
      record,
      tracing.contextWith(ROOT_CONTEXT, parentSpan),
    );
    parentSpan.end();
    await tracing.flush();
    const send = byName(exporter.getFinishedSpans(), 'send orders.fifo');
    expect(send.attributes['messaging.system.name']).toBe('aws_sqs');
    expect(send.parentSpanContext?.spanId).toBe(parentSpan.spanContext().spanId);
    expect(published).toEqual([
      {
        dedupId: record.order.id,
        trace: {
          traceparent: `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
        },
      },
    ]);
    await tracing.shutdown();
  });

  it('reads traceparent from Kafka headers as kafkajs delivers them (Buffers)', () => {
    const tracing = Tracing.create({
      serviceName: 't',
      exporter: new InMemorySpanExporter(),
    });
    const ctx = tracing.extract({ traceparent: Buffer.from(traceparent), other: undefined });
    const child = tracing.startSpan('process', { kind: SpanKind.CONSUMER }, ctx);
    expect(child.spanContext().traceId).toBe(TRACE_ID);
    // A garbled header starts a new trace instead of failing the record.
    const fresh = tracing.startSpan('x', {}, tracing.extract({ traceparent: 'garbage' }));
    expect(fresh.spanContext().traceId).not.toBe(TRACE_ID);
    expect(fresh.isRecording()).toBe(true);
  });
});

describe('OTLP/HTTP export', () => {
  it.each([
    ['http/protobuf', 'application/x-protobuf'],
    ['http/json', 'application/json'],
  ] as const)(
    'posts %s to the endpoint (%s) with the spans and service.name',
    async (protocol, type) => {
      const got: { path: string; type: string | undefined; body: Buffer }[] = [];
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          got.push({
            path: req.url ?? '',
            type: req.headers['content-type'],
            body: Buffer.concat(chunks),
          });
          res.writeHead(200, { 'content-type': type }).end(protocol === 'http/json' ? '{}' : '');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const tracing = Tracing.create({
          serviceName: 'orders-api',
          endpoint: `http://127.0.0.1:${port}/v1/traces`,
          protocol,
        });
        tracing.startSpan('send orders.intake.v1', { kind: SpanKind.PRODUCER }).end();
        await tracing.shutdown();
        expect(got).toHaveLength(1);
        expect(got[0]?.path).toBe('/v1/traces');
        expect(got[0]?.type).toBe(type);
        const body = got[0]?.body.toString('latin1') ?? '';
        expect(body).toContain('send orders.intake.v1');
        expect(body).toContain('orders-api');
      } finally {
        server.close();
      }
    },
  );
});

describe('tracing off (no endpoint)', () => {
  it('records nothing, adds no header and no traceId, and the request works as before', async () => {
    expect(Tracing.create(undefined)).toBe(Tracing.off);
    expect(Tracing.create({ serviceName: 'x' })).toBe(Tracing.off);
    const sent: Message[] = [];
    const { app, log } = await tracedApp(undefined, sent);
    expect(app.tracing.enabled).toBe(false);
    const res = await app.inject({
      method: 'POST',
      url: '/orders',
      headers: { traceparent, 'x-jwt-payload': TOKEN_PAYLOAD, 'x-request-id': 'req-1' },
      payload: {},
    });
    expect(res.statusCode).toBe(202);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.headers).toEqual({ 'x-request-id': 'req-1' });
    const completed = log.read().find((l) => l.msg === 'request completed');
    expect(completed).toBeDefined();
    expect(completed).not.toHaveProperty('traceId');
    const off = Tracing.off;
    expect(off.inject(off.extract({ traceparent }))).toEqual({});
    expect(off.startSpan('x', {}).isRecording()).toBe(false);
    await app.close();
  });
});

describe('tracingFromEnv', () => {
  it('is off without the endpoint, and takes the URL and service name when set', () => {
    expect(tracingFromEnv(new Env({}), 'ledger')).toBeUndefined();
    expect(
      tracingFromEnv(
        new Env({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }),
        'ledger',
      ),
    ).toEqual({
      serviceName: 'ledger',
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    expect(
      tracingFromEnv(
        new Env({
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example:4318/v1/traces',
          OTEL_SERVICE_NAME: 'ledger-eu',
          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        }),
        'ledger',
      ),
    ).toEqual({
      serviceName: 'ledger-eu',
      endpoint: 'https://otel.example:4318/v1/traces',
      protocol: 'http/json',
    });
    expect(() =>
      tracingFromEnv(
        new Env({
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4317',
          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
        }),
        'ledger',
      ),
    ).toThrow(
      'invalid configuration: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be one of http/protobuf, http/json, got "grpc"',
    );
  });

  it('refuses a bad endpoint, naming the variable, in the loader and in the schema', () => {
    for (const bad of ['127.0.0.1:4318', 'ftp://x/v1/traces', 'http://user:pw@x:4318/v1/traces']) {
      const err = (() => {
        try {
          tracingFromEnv(new Env({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: bad }), 'ledger');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
      expect((err as Error).message).not.toContain('pw@');
    }
    expect(
      envProblems(tracingEnvSchema, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '127.0.0.1:4318' }),
    ).toEqual([
      {
        variable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
        problem: expect.stringContaining('must match pattern') as string,
      },
    ]);
    expect(
      envProblems(tracingEnvSchema, {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces',
        OTEL_SERVICE_NAME: 'orders-api',
      }),
    ).toEqual([]);
  });
});
