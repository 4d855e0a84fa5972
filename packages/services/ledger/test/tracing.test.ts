/**
 * ledger's spans with the SDK's InMemorySpanExporter: the `process orders.v1` span continues the
 * `traceparent` the writer put on the record, the projection's upsert is its child, and the log line
 * carries the trace id. The Kafka consumer and the Cassandra client are stand-ins (the real ones are in
 * infra/local/test/services.component.test.ts); the consumer's batch handling is the real one.
 */
import { Writable } from 'node:stream';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { encodeOrderCreated, type OrderCreated } from '@trellis/contracts/orders-v1';
import { ROOT_CONTEXT, SpanKind, Tracing } from '@trellis/service-platform/tracing';
import type cassandra from 'cassandra-driver';
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { envProblems } from '@trellis/service-platform/env-schema';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ledgerEnvSchema } from '../src/env.ts';
import { OrderConsumer } from '../src/consumer.ts';
import { EntryStore } from '../src/entries.ts';

/** A kafkajs client whose group consumer only records commits (batches are handed in below). */
function stubKafka(commits: unknown[]): kafkajs.Kafka {
  const consumer = {
    events: { GROUP_JOIN: 'j', CRASH: 'c', DISCONNECT: 'd', STOP: 's' },
    on: () => () => undefined,
    commitOffsets: async (o: unknown) => {
      commits.push(o);
    },
  };
  return { consumer: () => consumer } as unknown as kafkajs.Kafka;
}

const event: OrderCreated = {
  type: 'order.created',
  version: 1,
  order: {
    id: '0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
    sku: 'A-1',
    quantity: 1,
    subject: 'alice',
    createdAt: '2026-12-07T00:00:00.000Z',
  },
  subject: 'alice',
  requestId: 'req-1',
};

async function consume(tracing: Tracing, headers: KafkaMessage['headers']) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  const log = Fastify({ logger: { stream } }).log;
  const writes: unknown[][] = [];
  const client = {
    execute: async (_q: string, params: unknown[]) => {
      writes.push(params);
      return {};
    },
  } as unknown as cassandra.Client;
  const commits: unknown[] = [];
  const consumer = new OrderConsumer(
    stubKafka(commits),
    new EntryStore(client),
    { topic: 'orders.v1', groupId: 'ledger', storeReady: () => true, tracing },
    log,
  );
  const message = {
    key: Buffer.from(event.order.id),
    value: encodeOrderCreated(event),
    offset: '7',
    headers,
  } as unknown as KafkaMessage;
  const payload = {
    batch: { topic: 'orders.v1', partition: 0, messages: [message] },
    resolveOffset: () => undefined,
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  await (consumer as unknown as { handleBatch(p: EachBatchPayload): Promise<void> }).handleBatch(
    payload,
  );
  const lines = chunks
    .join('')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { writes, commits, lines };
}

describe('ledger tracing', () => {
  it('continues the record’s traceparent: process span, then the upsert under it', async () => {
    // The writer's side: its send span's context is on the record, as kafkajs delivers it (a Buffer).
    const writer = Tracing.create({
      serviceName: 'orders-writer',
      exporter: new InMemorySpanExporter(),
    });
    const send = writer.startSpan('send orders.v1', { kind: SpanKind.PRODUCER });
    const { traceparent } = writer.inject(writer.contextWith(ROOT_CONTEXT, send));
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create({ serviceName: 'ledger', exporter });
    const { writes, commits, lines } = await consume(tracing, {
      traceparent: Buffer.from(traceparent ?? ''),
      'x-request-id': Buffer.from('req-1'),
    });
    expect(writes).toHaveLength(1);
    expect(commits).toHaveLength(1);
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).sort()).toEqual([
      'INSERT ledger.order_entries',
      'process orders.v1',
    ]);
    const process = spans.find((s) => s.name === 'process orders.v1');
    const upsert = spans.find((s) => s.name === 'INSERT ledger.order_entries');
    const traceId = send.spanContext().traceId;
    expect(process?.kind).toBe(SpanKind.CONSUMER);
    expect(process?.spanContext().traceId).toBe(traceId);
    expect(process?.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(process?.attributes).toMatchObject({
      'messaging.consumer.group.name': 'ledger',
      'messaging.destination.partition.id': '0',
      'kafka.offset': 7,
      'kafka.message.key': event.order.id,
    });
    expect(upsert?.kind).toBe(SpanKind.CLIENT);
    expect(upsert?.parentSpanContext?.spanId).toBe(process?.spanContext().spanId);
    expect(upsert?.attributes['db.namespace']).toBe('ledger');
    const projected = lines.find((l) => l.msg === 'projected order');
    expect(projected).toMatchObject({ requestId: 'req-1', traceId });
    await tracing.shutdown();
    await writer.shutdown();
  });

  it('projects the same way with tracing off, without a trace id on the line', async () => {
    const { writes, lines } = await consume(Tracing.off, { traceparent: Buffer.from('x') });
    expect(writes).toHaveLength(1);
    const projected = lines.find((l) => l.msg === 'projected order');
    expect(projected).toBeDefined();
    expect(projected).not.toHaveProperty('traceId');
  });
});

describe('ledger tracing configuration', () => {
  it('is turned on by the standard OTEL variables, which the env schema declares', () => {
    const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };
    const otel = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' };
    expect(envProblems(ledgerEnvSchema, { ...base, ...otel, OTEL_SERVICE_NAME: 'ledger' })).toEqual(
      [],
    );
    expect(loadConfig({ ...base, ...otel }).app.tracing).toEqual({
      serviceName: 'ledger',
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    expect(loadConfig(base).app.tracing).toBeUndefined();
  });
});
