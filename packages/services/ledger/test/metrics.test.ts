/**
 * ledger's `/metrics`: the counters follow the consumer's real batch handling. The Kafka
 * consumer and the Cassandra client are stand-ins, as in tracing.test.ts.
 */
import { encodeOrderCreated, type OrderCreated } from '@trellis/contracts/orders-v1';
import type cassandra from 'cassandra-driver';
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OrderConsumer } from '../src/consumer.ts';
import { EntryStore } from '../src/entries.ts';
import { registerConsumerMetrics } from '../src/metrics.ts';

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

/** The value of an unlabelled sample in Prometheus text. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('ledger /metrics', () => {
  it('counts projected and malformed records after a batch', async () => {
    const kafka = {
      consumer: () => ({
        events: { GROUP_JOIN: 'j', CRASH: 'c', DISCONNECT: 'd', STOP: 's' },
        on: () => () => undefined,
        commitOffsets: async () => undefined,
      }),
    } as unknown as kafkajs.Kafka;
    const client = { execute: async () => ({}) } as unknown as cassandra.Client;
    const consumer = new OrderConsumer(
      kafka,
      new EntryStore(client),
      { topic: 'orders.v1', groupId: 'ledger', storeReady: () => true },
      Fastify({ logger: false }).log,
    );
    const registry = new Registry();
    registerConsumerMetrics(registry, consumer);
    const messages = [
      { key: null, value: encodeOrderCreated(event), offset: '7', headers: {} },
      { key: null, value: Buffer.from('{"not":"an event"}'), offset: '8', headers: {} },
      { key: null, value: encodeOrderCreated(event), offset: '9', headers: {} },
    ] as unknown as KafkaMessage[];
    await (consumer as unknown as { handleBatch(p: EachBatchPayload): Promise<void> }).handleBatch({
      batch: { topic: 'orders.v1', partition: 0, messages },
      resolveOffset: () => undefined,
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload);
    const text = await registry.metrics();
    // The same event twice is projected twice (an idempotent upsert), the malformed one skipped.
    expect(sample(text, 'ledger_events_projected_total')).toBe(2);
    expect(sample(text, 'ledger_malformed_events_total')).toBe(1);
  });
});
