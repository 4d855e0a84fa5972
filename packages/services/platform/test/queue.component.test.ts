/**
 * The SQS order queue against a real SQS-compatible server (ElasticMQ, from the toolchain), not a mock:
 * FIFO deduplication of a retried publish, redelivery of an unacked batch after the visibility timeout,
 * acked records gone for good, errors that name the queue, and the trace context as a message attribute.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { PublishError } from '../src/publisher.ts';
import { startElasticMq, type ElasticMqInstance } from '@trellis/local/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueError, SqsOrderPublisher, SqsOrderQueue, type OrderBatch } from '../src/queue.ts';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { ROOT_CONTEXT, SpanKind, Tracing } from '../src/tracing.ts';

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

function event(requestHash: string | null = null): OrderAccepted {
  const id = randomUUID();
  return {
    type: 'order.accepted',
    version: 1,
    order: { id, sku: 'sku-1', quantity: 2, subject: 'alice', createdAt: new Date().toISOString() },
    requestHash,
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
      { name: 'publisher.fifo', fifo: true, visibilityTimeoutSeconds: DEDUP_VISIBILITY_S },
      { name: 'trace.fifo', fifo: true, visibilityTimeoutSeconds: DEDUP_VISIBILITY_S },
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
    const retried = events[2] as OrderAccepted;
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
        // Published without a trace context: none comes back.
        expect(o.trace).toBeUndefined();
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

  it('reports a body that is not an order.accepted record as malformed and never acks it', async () => {
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
          MessageBody: '{"type":"order.created","version":1}',
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
      {
        messageId: expect.any(String),
        error: 'record.type is "order.created", want "order.accepted"',
      },
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

  it("orders-api's SqsOrderPublisher: dedup id = order id, so a keyed retry's second record (new request id) is not stored", async () => {
    const q = queue('publisher.fifo');
    const publisher = new SqsOrderPublisher(q);
    await publisher.connect();
    expect(publisher.ready()).toBe(true);
    const first = event('a'.repeat(64));
    await publisher.publish(first);
    // What orders-api publishes when the client retries before the writer stored the order: same
    // order id, another request id.
    await publisher.publish({ ...first, requestId: 'req-retry' });
    const other = event();
    await publisher.publish(other);

    const batches = await collect(q, 2);
    expect((await q.receiveBatch(10, 1_000)).orders).toEqual([]);
    const got = batches.flatMap((b) => b.orders);
    expect(got.map((o) => o.event.order.id).sort()).toEqual(
      [first.order.id, other.order.id].sort(),
    );
    const firstGot = got.find((o) => o.event.order.id === first.order.id);
    expect(firstGot?.dedupId).toBe(first.order.id);
    // The first send is the stored one, with its fingerprint.
    expect(firstGot?.event).toEqual(first);
    expect(got.find((o) => o.event.order.id === other.order.id)?.event.requestHash).toBeNull();
    for (const b of batches) await q.ack(b);
  });

  it('carries the send span’s traceparent as a message attribute, which the receiver gets back', async () => {
    const q = queue('trace.fifo');
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create({ serviceName: 'orders-api', exporter });
    const request = tracing.startSpan('POST /orders', { kind: SpanKind.SERVER });
    const e = event();
    await new SqsOrderPublisher(q, tracing).publish(e, tracing.contextWith(ROOT_CONTEXT, request));
    request.end();
    const [batch] = await collect(q, 1);
    await tracing.flush();
    const send = exporter.getFinishedSpans().find((s) => s.name === 'send trace.fifo');
    if (!send) throw new Error('no send span');
    expect(send.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    const got = batch?.orders[0];
    expect(got?.event).toEqual(e);
    expect(got?.trace).toEqual({
      traceparent: `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
    });
    // The writer continues it: a span under the received context is in the same trace.
    const process = tracing.startSpan('process', {}, tracing.extract(got?.trace));
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    if (batch) await q.ack(batch);
    await tracing.shutdown();
  });

  it('SqsOrderPublisher turns a failed or unanswered SendMessage into a PublishError naming the queue', async () => {
    const missing = `${server.endpoint}/000000000000/missing.fifo`;
    const gone = new SqsOrderPublisher(
      new SqsOrderQueue({
        queueUrl: missing,
        region: server.region,
        endpoint: server.endpoint,
        credentials: CREDENTIALS,
        maxAttempts: 1,
      }),
    );
    const err = await gone.publish(event()).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as Error).message).toContain(`sqs SendMessage on ${missing}`);
    expect((err as Error).cause).toBeInstanceOf(QueueError);
    await gone.close();
    expect(gone.ready()).toBe(false);

    // A server that accepts the connection and never answers: bounded by timeoutMs.
    const sockets = new Set<Socket>();
    const hole = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const port = (hole.address() as AddressInfo).port;
    const silent = new SqsOrderPublisher(
      new SqsOrderQueue({
        queueUrl: `http://127.0.0.1:${port}/000000000000/orders.fifo`,
        region: server.region,
        endpoint: `http://127.0.0.1:${port}`,
        credentials: CREDENTIALS,
        timeoutMs: 300,
      }),
    );
    try {
      const t0 = Date.now();
      const slow = await silent.publish(event()).catch((x: unknown) => x);
      expect(slow).toBeInstanceOf(PublishError);
      expect((slow as Error).message).toContain('no answer within 300 ms');
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      await silent.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => hole.close(r));
    }
  });
});
