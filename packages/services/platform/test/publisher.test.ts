/**
 * Publisher's timeout. A kafkajs producer only sends once connected, and a connected producer needs a
 * real broker, so the produce request that never answers is a stand-in producer here (`send` that
 * never settles); the queueing and timeout logic under test is the real Publisher's. Publishing to a
 * real broker is covered by the services' component tests.
 */
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';
import type { Message, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PublishError, Publisher } from '../src/publisher.ts';

/** A kafkajs client whose producer is connected and whose produce requests never answer. */
function hungKafka(sent: Message[][]): kafkajs.Kafka {
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: () => () => undefined,
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: (r: ProducerRecord) => {
      sent.push(r.messages);
      return new Promise<never>(() => undefined);
    },
  };
  return { producer: () => producer } as unknown as kafkajs.Kafka;
}

describe('Publisher timeout', () => {
  it('rejects every caller in time; a record still waiting behind the one in flight is withdrawn, never sent', async () => {
    const sent: Message[][] = [];
    const log = Fastify({ logger: false }).log;
    const publisher = new Publisher(hungKafka(sent), { topic: 't', timeoutMs: 300 }, log);
    const t0 = Date.now();
    const [first, second] = await Promise.all([
      publisher.publish({ key: 'a', value: 'a' }).catch((e: unknown) => e),
      publisher.publish({ key: 'b', value: 'b' }).catch((e: unknown) => e),
    ]);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(first).toBeInstanceOf(PublishError);
    expect((first as Error).message).toBe(
      'no ack from Kafka within 300 ms (record in flight, it may still be written)',
    );
    expect(second).toBeInstanceOf(PublishError);
    expect((second as Error).message).toBe(
      'no ack from Kafka within 300 ms (record withdrawn unsent)',
    );
    // Only the first went out; `b` was taken off the queue before its produce request.
    expect(sent.map((batch) => batch.map((m) => m.key))).toEqual([['a']]);
  });
});
