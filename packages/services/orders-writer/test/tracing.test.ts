/**
 * The writer's spans with the SDK's InMemorySpanExporter: each intake record's `process` span
 * continues the `traceparent` orders-api put on it, and that order's read, row write (one span per row
 * of the CQL batch) and `orders.v1` send descend from it, so one trace runs through the queue; the
 * `orders.v1` record carries the send span's `traceparent` for the ledger. The Cassandra client and
 * the produce request are stand-ins (the real ones are in
 * infra/local/test/services/orders-writer.suite.ts).
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { Publisher } from '@trellis/service-platform/publisher';
import { ROOT_CONTEXT, SpanKind, Tracing } from '@trellis/service-platform/tracing';
import type cassandra from 'cassandra-driver';
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';
import type { Message, ProducerRecord } from 'kafkajs';
import { envProblems } from '@trellis/service-platform/env-schema';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ordersWriterEnvSchema } from '../src/env.ts';
import { OrderRows } from '../src/rows.ts';
import { ChunkWriter } from '../src/writer.ts';

const lines: Record<string, unknown>[] = [];
const log = Fastify({
  logger: {
    stream: new Writable({
      write(c: Buffer, _e, cb) {
        for (const l of c.toString().split('\n'))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  },
}).log;

function record(id: string, hash: string): OrderAccepted {
  return {
    type: 'order.accepted',
    version: 1,
    order: { id, sku: 'A-1', quantity: 1, subject: 'alice', createdAt: '2026-12-07T00:00:00.000Z' },
    requestHash: hash,
    subject: 'alice',
    requestId: `req-${id.slice(0, 8)}`,
  };
}

/** A connected producer that acks every request and keeps the records. */
function ackingKafka(sent: Message[]): kafkajs.Kafka {
  const producer = {
    events: { CONNECT: 'c', DISCONNECT: 'd' },
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

/** A Cassandra client with no rows stored, counting batches. */
function emptyStore(batches: number[]): cassandra.Client {
  return {
    execute: async () => ({ first: () => null }),
    batch: async (queries: unknown[]) => {
      batches.push(queries.length);
      return {};
    },
  } as unknown as cassandra.Client;
}

function parentOf(s: ReadableSpan): string | undefined {
  return s.parentSpanContext?.spanId;
}

describe('ChunkWriter tracing', () => {
  it("puts each order's read, row write and orders.v1 send in the trace its record came with", async () => {
    // orders-api's side: two requests, two traces, each record carrying its send span's context.
    const apiExporter = new InMemorySpanExporter();
    const api = Tracing.create({ serviceName: 'orders-api', exporter: apiExporter });
    const [idA, idB] = [randomUUID(), randomUUID()];
    const records = [record(idA, 'a'.repeat(64)), record(idB, 'b'.repeat(64))];
    records.push(records[0] as OrderAccepted); // a duplicate of A in the same chunk
    const sends = [idA, idB].map((id) => api.startSpan(`send ${id}`, { kind: SpanKind.PRODUCER }));
    const headers = [sends[0], sends[1], sends[0]].map((s) =>
      api.inject(api.contextWith(ROOT_CONTEXT, s ?? api.startSpan('x', {}))),
    );

    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create({ serviceName: 'orders-writer', exporter });
    const sent: Message[] = [];
    const batches: number[] = [];
    const writer = new ChunkWriter(
      new OrderRows(emptyStore(batches), tracing),
      new Publisher(ackingKafka(sent), { topic: 'orders.v1', tracing }, log),
      log,
      tracing,
    );
    const plan = await writer.write(records, {
      system: 'kafka',
      destination: 'orders.intake.v1',
      headers,
    });
    expect(plan.outcomes).toEqual(['written', 'written', 'duplicate']);
    expect(batches).toEqual([2]); // one CQL batch for both rows
    await tracing.flush();
    const spans = exporter.getFinishedSpans();

    for (const [i, id] of [idA, idB].entries()) {
      const send = sends[i];
      if (!send) throw new Error('no send span');
      const traceId = send.spanContext().traceId;
      const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
      const processes = inTrace.filter((s) => s.name === 'process orders.intake.v1');
      // A's trace also holds the duplicate's process span (same traceparent).
      expect(processes).toHaveLength(i === 0 ? 2 : 1);
      const first = processes.find((s) => s.attributes['trellis.order.outcome'] === 'written');
      if (!first) throw new Error('no process span for the written record');
      expect(first.kind).toBe(SpanKind.CONSUMER);
      expect(parentOf(first)).toBe(send.spanContext().spanId);
      expect(first.attributes).toMatchObject({
        'messaging.destination.name': 'orders.intake.v1',
        'trellis.order.id': id,
        'messaging.batch.message_count': 3,
      });
      const children = inTrace.filter((s) => parentOf(s) === first.spanContext().spanId);
      expect(children.map((s) => s.name).sort()).toEqual([
        'BATCH INSERT orders.orders',
        'SELECT orders.orders',
        'send orders.v1',
      ]);
      const write = children.find((s) => s.name === 'BATCH INSERT orders.orders');
      expect(write?.attributes).toMatchObject({
        'db.system.name': 'cassandra',
        'db.namespace': 'orders',
        'db.collection.name': 'orders',
        'db.operation.batch.size': 2,
      });
      // The orders.v1 record carries its send span's context: the ledger continues this trace.
      const emitted = children.find((s) => s.name === 'send orders.v1');
      const out = sent.find((m) => m.key === id);
      expect(out?.headers?.traceparent).toBe(
        `00-${traceId}-${emitted?.spanContext().spanId ?? ''}-01`,
      );
      expect(out?.headers?.['x-request-id']).toBe(`req-${id.slice(0, 8)}`);
      // The writer's line for the order carries the order's trace id, for `./trellis audit`.
      expect(lines.find((l) => l.msg === 'order stored' && l.orderId === id)?.traceId).toBe(
        traceId,
      );
    }
    await tracing.shutdown();
    await api.shutdown();
  });

  it('marks every record span failed when the chunk fails, and adds no header with tracing off', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create({ serviceName: 'orders-writer', exporter });
    const broken = {
      execute: async () => {
        throw new Error('no host available');
      },
    } as unknown as cassandra.Client;
    const sent: Message[] = [];
    const failing = new ChunkWriter(
      new OrderRows(broken, tracing),
      new Publisher(ackingKafka(sent), { topic: 'orders.v1', tracing }, log),
      log,
      tracing,
    );
    const r = record(randomUUID(), 'c'.repeat(64));
    await expect(
      failing.write([r], { system: 'kafka', destination: 'orders.intake.v1', headers: [{}] }),
    ).rejects.toThrow('no host available');
    await tracing.flush();
    const process = exporter.getFinishedSpans().find((s) => s.name === 'process orders.intake.v1');
    expect(process?.status.code).toBe(2);
    expect(process?.parentSpanContext).toBeUndefined(); // no traceparent: a trace of its own
    await tracing.shutdown();

    // Off: the same chunk goes through with only the request id header.
    const off = new ChunkWriter(
      new OrderRows(emptyStore([]), Tracing.off),
      new Publisher(ackingKafka(sent), { topic: 'orders.v1', tracing: Tracing.off }, log),
      log,
      Tracing.off,
    );
    await off.write([r], { system: 'kafka', destination: 'orders.intake.v1', headers: [{}] });
    expect(sent.map((m) => m.headers)).toEqual([{ 'x-request-id': r.requestId }]);
  });
});

describe('orders-writer tracing configuration', () => {
  it('is turned on by the standard OTEL variables, which the env schema declares', () => {
    const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };
    const otel = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' };
    expect(
      envProblems(ordersWriterEnvSchema, { ...base, ...otel, OTEL_SERVICE_NAME: 'orders-writer' }),
    ).toEqual([]);
    expect(loadConfig({ ...base, ...otel }).app.tracing).toEqual({
      serviceName: 'orders-writer',
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    expect(loadConfig(base).app.tracing).toBeUndefined();
  });
});
