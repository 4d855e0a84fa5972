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
import { handingOut, keptLog } from './support/kept-log.ts';

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

/** A stand-in producer: `answer` decides, per request, whether and when it is acknowledged. */
function standInProducer(
  name: string,
  answer: (r: ProducerRecord) => Promise<void>,
  connects: () => Promise<void> = async () => undefined,
) {
  const handlers = new Map<string, () => void>();
  const state = { name, connected: false, disconnected: false, sent: [] as string[][] };
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: (event: string, fn: () => void) => {
      handlers.set(event, fn);
      return () => undefined;
    },
    connect: async () => {
      await connects();
      state.connected = true;
      handlers.get('producer.connect')?.();
    },
    disconnect: async () => {
      state.disconnected = true;
      handlers.get('producer.disconnect')?.();
    },
    send: async (r: ProducerRecord) => {
      state.sent.push(r.messages.map((m) => String(m.key)));
      await answer(r);
      return [];
    },
  };
  return { producer, state };
}

describe('Publisher: a stalled produce request', () => {
  it('replaces the producer after stallMs, and the next records go out on the new one', async () => {
    const never = standInProducer('cut-off', () => new Promise<never>(() => undefined));
    const fresh = standInProducer('fresh', async () => undefined);
    const { log, lines } = keptLog();
    const publisher = new Publisher(
      handingOut('producer', never, fresh),
      { topic: 't', timeoutMs: 200, stallMs: 400 },
      log,
    );
    await publisher.connect();
    expect(publisher.ready()).toBe(true);

    // The first record's request never answers: its caller is told in time, as before.
    const first = await publisher.publish({ key: 'a', value: 'a' }).catch((e: unknown) => e);
    expect((first as Error).message).toBe(
      'no ack from Kafka within 200 ms (record in flight, it may still be written)',
    );
    expect(publisher.replaced()).toBe(0);

    // After stallMs the stalled producer is dropped and a new one connected...
    const t0 = Date.now();
    while (!fresh.state.connected && Date.now() - t0 < 5_000) await sleep(20);
    expect(fresh.state.connected).toBe(true);
    expect(never.state.disconnected).toBe(true);
    expect(publisher.replaced()).toBe(1);
    expect(publisher.ready()).toBe(true);
    expect(lines.map((l) => l.msg)).toContain(
      'produce request stalled; replacing the producer, with new connections',
    );

    // ... which carries the next record; the stalled one saw only the first.
    await publisher.publish({ key: 'b', value: 'b' });
    expect(fresh.state.sent).toEqual([['b']]);
    expect(never.state.sent).toEqual([['a']]);
    await publisher.close();
    expect(fresh.state.disconnected).toBe(true);
  });

  it('replaces a new producer that does not connect within stallMs in turn', async () => {
    const never = () => new Promise<never>(() => undefined);
    const stalled = standInProducer('cut-off', never);
    const unconnectable = standInProducer('seeded on the cut-off node', never, never);
    const fresh = standInProducer('fresh', async () => undefined);
    const { log, lines } = keptLog();
    const publisher = new Publisher(
      handingOut('producer', stalled, unconnectable, fresh),
      { topic: 't', timeoutMs: 100, stallMs: 200 },
      log,
    );
    await publisher.connect();
    await publisher.publish({ key: 'a', value: 'a' }).catch(() => undefined);
    const t0 = Date.now();
    while (!fresh.state.connected && Date.now() - t0 < 5_000) await sleep(20);
    expect(fresh.state.connected).toBe(true);
    expect(unconnectable.state.connected).toBe(false);
    expect(unconnectable.state.disconnected).toBe(true);
    expect(publisher.replaced()).toBe(2);
    expect(lines.map((l) => l.msg)).toContain('new producer did not connect; replacing it too');
    await publisher.publish({ key: 'b', value: 'b' });
    expect(fresh.state.sent).toEqual([['b']]);
    await publisher.close();
  });

  it('keeps a producer whose request is slow but answered within stallMs', async () => {
    const slow = standInProducer('slow', () => sleep(300));
    const { log } = keptLog();
    // Only one producer: a replacement would throw in handingOut.
    const publisher = new Publisher(
      handingOut('producer', slow),
      { topic: 't', timeoutMs: 500, stallMs: 600 },
      log,
    );
    await publisher.connect();
    await publisher.publish({ key: 'a', value: 'a' });
    await publisher.publish({ key: 'b', value: 'b' });
    expect(slow.state.sent).toEqual([['a'], ['b']]);
    expect(publisher.replaced()).toBe(0);
    await publisher.close();
  });

  it('refuses a stallMs shorter than timeoutMs, naming both', () => {
    const { log } = keptLog();
    expect(
      () =>
        new Publisher(
          handingOut(
            'producer',
            standInProducer('x', async () => undefined),
          ),
          { topic: 't', timeoutMs: 500, stallMs: 100 },
          log,
        ),
    ).toThrow(/stallMs \(100\) must be at least timeoutMs \(500\)/);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
