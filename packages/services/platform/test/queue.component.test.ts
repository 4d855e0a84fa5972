/**
 * The SQS order queue against a real SQS-compatible server (ElasticMQ, from the toolchain), not a mock:
 * FIFO deduplication of a retried publish, redelivery of an unacked batch after the visibility timeout,
 * acked records gone for good, and errors that name the queue.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { OrderCreated } from '@trellis/contracts/orders-v1';
import { startElasticMq, type ElasticMqInstance } from '@trellis/local/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueError, SqsOrderQueue, type OrderBatch } from '../src/queue.ts';

/** Not a secret: ElasticMQ checks no credentials, but the SDK signs every request. */
const CREDENTIALS = { accessKeyId: 'elasticmq', secretAccessKey: 'elasticmq' };
/** The dedup queue's visibility timeout: longer than the test, so nothing is received twice there. */
const DEDUP_VISIBILITY_S = 60;
/** The other queues': short, so that redelivery is seen within the test. */
const VISIBILITY_S = 2;

let dir: string;
let server: ElasticMqInstance;
const queues: SqsOrderQueue[] = [];

function queue(name: string, opts: { maxAttempts?: number } = {}): SqsOrderQueue {
  const url = server.queueUrls[name];
  if (!url) throw new Error(`no queue ${name}`);
  const q = new SqsOrderQueue({
    queueUrl: url,
    region: server.region,
    endpoint: server.endpoint,
    credentials: CREDENTIALS,
    ...opts,
  });
  queues.push(q);
  return q;
}

function event(): OrderCreated {
  const id = randomUUID();
  return {
    type: 'order.created',
    version: 1,
    order: { id, sku: 'sku-1', quantity: 2, subject: 'alice', createdAt: new Date().toISOString() },
    subject: 'alice',
    requestId: `req-${id}`,
  };
}

/**
 * Receive until `n` records have come (each receive waits up to 1 s), within `timeoutMs`; every batch.
 * Bounded by count, not by an empty receive: with a short visibility timeout the first records would
 * come back before the queue ever looked empty.
 */
async function collect(q: SqsOrderQueue, n: number, timeoutMs = 10_000): Promise<OrderBatch[]> {
  const out: OrderBatch[] = [];
  const deadline = Date.now() + timeoutMs;
  while (ids(out).length < n && Date.now() < deadline) {
    const b = await q.receiveBatch(10, 1_000);
    if (b.orders.length > 0) out.push(b);
  }
  return out;
}

const ids = (bs: OrderBatch[]): string[] =>
  bs.flatMap((b) => b.orders.map((o) => o.event.order.id));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-sqs-'));
  server = await startElasticMq({
    dir,
    queues: [
      { name: 'dedup.fifo', fifo: true, visibilityTimeoutSeconds: DEDUP_VISIBILITY_S },
      { name: 'redeliver.fifo', fifo: true, visibilityTimeoutSeconds: VISIBILITY_S },
      { name: 'malformed.fifo', fifo: true, visibilityTimeoutSeconds: VISIBILITY_S },
    ],
  });
});

afterAll(async () => {
  for (const q of queues) q.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqsOrderQueue on ElasticMQ (FIFO)', () => {
  it('delivers N published orders once each, a retried publish with the same dedup id included', async () => {
    const q = queue('dedup.fifo');
    const events = Array.from({ length: 5 }, event);
    for (const e of events) await q.publish(e, e.order.id);
    // The retry of an order whose first publish was stored (its ack lost, say): accepted, not stored again.
    const retried = events[2] as OrderCreated;
    await q.publish(retried, retried.order.id);

    const batches = await collect(q, events.length);
    // Nothing more: the retry was not stored (the visibility timeout is 60 s, so no record is redelivered).
    const more = await q.receiveBatch(10, 1_000);
    expect(more.orders).toEqual([]);
    expect(ids(batches).sort()).toEqual(events.map((e) => e.order.id).sort());
    for (const b of batches) {
      expect(b.orders.length).toBeLessThanOrEqual(10);
      for (const o of b.orders) {
        expect(o.dedupId).toBe(o.event.order.id);
        expect(o.receiveCount).toBe(1);
      }
    }
    await Promise.all(batches.map((b) => q.ack(b)));
  });

  it('redelivers a batch that was not acked after the visibility timeout, and never an acked one', async () => {
    const q = queue('redeliver.fifo');
    const events = Array.from({ length: 3 }, event);
    for (const e of events) await q.publish(e, e.order.id);
    const want = events.map((e) => e.order.id).sort();

    const first = await collect(q, want.length);
    expect(ids(first).sort()).toEqual(want);
    // Not acked (the write failed, say): invisible now, back after the visibility timeout.
    expect((await q.receiveBatch(10, 0)).orders).toEqual([]);
    await new Promise((r) => setTimeout(r, VISIBILITY_S * 1000 + 500));

    const again = await collect(q, want.length);
    expect(ids(again).sort()).toEqual(want);
    for (const o of again.flatMap((b) => b.orders)) expect(o.receiveCount).toBe(2);
    for (const b of again) await q.ack(b);

    await new Promise((r) => setTimeout(r, VISIBILITY_S * 1000 + 500));
    expect((await q.receiveBatch(10, 1_000)).orders).toEqual([]);
  });

  it('reports a body that is not an order.created event as malformed and never acks it', async () => {
    const q = queue('malformed.fifo');
    const raw = new SQSClient({
      region: server.region,
      endpoint: server.endpoint,
      credentials: CREDENTIALS,
    });
    try {
      await raw.send(
        new SendMessageCommand({
          QueueUrl: server.queueUrls['malformed.fifo'],
          MessageBody: '{"type":"order.created","version":2}',
          MessageGroupId: 'g',
          MessageDeduplicationId: 'bad-1',
        }),
      );
    } finally {
      raw.destroy();
    }
    const b = await q.receiveBatch(10, 1_000);
    expect(b.orders).toEqual([]);
    expect(b.malformed).toEqual([
      { messageId: expect.any(String), error: 'event.version is 2, want 1' },
    ]);
    await q.ack(b); // deletes nothing: the record comes back for a dead-letter queue to take
    await new Promise((r) => setTimeout(r, VISIBILITY_S * 1000 + 500));
    expect((await q.receiveBatch(10, 1_000)).malformed).toHaveLength(1);
  });

  it('names the queue when it does not exist, and the field when the endpoint or queue URL is malformed', async () => {
    const missing = `${server.endpoint}/000000000000/missing.fifo`;
    const q = new SqsOrderQueue({
      queueUrl: missing,
      region: server.region,
      endpoint: server.endpoint,
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    queues.push(q);
    const e = event();
    const err = await q.publish(e, e.order.id).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(QueueError);
    expect((err as Error).message).toContain(`sqs SendMessage on ${missing}`);
    expect((err as Error).message).toMatch(/QueueDoesNotExist|NonExistentQueue/);

    const base = { region: 'elasticmq', credentials: CREDENTIALS };
    expect(() => new SqsOrderQueue({ ...base, queueUrl: missing, endpoint: 'not a url' })).toThrow(
      'sqs queue: endpoint "not a url" is not a URL',
    );
    expect(
      () => new SqsOrderQueue({ ...base, queueUrl: `${server.endpoint}/000000000000/orders` }),
    ).toThrow(/queueUrl ".*\/orders" must end in \/<account>\/<name>\.fifo/);
  });
});
