/**
 * orders-writer's `/metrics`: the counters follow a real chunk through the ChunkWriter. The
 * Cassandra client and the produce request are stand-ins, as in tracing.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { Publisher } from '@trellis/service-platform/publisher';
import type cassandra from 'cassandra-driver';
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerWriterMetrics } from '../src/metrics.ts';
import { OrderRows } from '../src/rows.ts';
import { ChunkWriter } from '../src/writer.ts';

const log = Fastify({ logger: false }).log;

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

/** The value of an unlabelled sample in Prometheus text. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('orders-writer /metrics', () => {
  it('counts what a chunk did', async () => {
    const producer = {
      events: { CONNECT: 'c', DISCONNECT: 'd' },
      on: () => () => undefined,
      connect: async () => undefined,
      disconnect: async () => undefined,
      send: async () => [],
    };
    const kafka = { producer: () => producer } as unknown as kafkajs.Kafka;
    // No rows stored yet: every new id is written.
    const client = {
      execute: async () => ({ first: () => null }),
      batch: async () => ({}),
    } as unknown as cassandra.Client;
    const writer = new ChunkWriter(
      new OrderRows(client),
      new Publisher(kafka, { topic: 'orders.v1' }, log),
      log,
    );
    const registry = new Registry();
    registerWriterMetrics(registry, writer.stats);
    const [a, b] = [randomUUID(), randomUUID()];
    const records = [record(a, 'a'.repeat(64)), record(b, 'b'.repeat(64))];
    records.push(records[0] as OrderAccepted); // a duplicate of A in the same chunk
    records.push(record(b, 'c'.repeat(64))); // B's id with another body: a conflict
    await writer.write(records, {
      system: 'kafka',
      destination: 'orders.intake.v1',
      headers: records.map(() => undefined),
    });
    const text = await registry.metrics();
    expect(sample(text, 'orders_writer_chunks_total')).toBe(1);
    expect(sample(text, 'orders_writer_orders_written_total')).toBe(2);
    expect(sample(text, 'orders_writer_events_emitted_total')).toBe(2);
    expect(sample(text, 'orders_writer_duplicates_total')).toBe(1);
    expect(sample(text, 'orders_writer_conflicts_total')).toBe(1);
    expect(sample(text, 'orders_writer_replays_total')).toBe(0);
    expect(sample(text, 'orders_writer_malformed_records_total')).toBe(0);
  });
});
