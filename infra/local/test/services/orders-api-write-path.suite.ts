/**
 * orders-api's queue-first write path (ADR 0022) with real parts: the shared Cassandra 5 (the keyed
 * read, GET), ElasticMQ (the SQS FIFO order queue, ORDERS_QUEUE=sqs) and Kafka broker (its own intake
 * topic, ORDERS_QUEUE=kafka) of support/service-stores.ts; orders-api connects as its own workload
 * identity (SELECT on keyspace orders only). Moved from
 * packages/services/orders-api/test/write-path.component.test.ts so that the stores start once per run.
 * The batch writer is not here (the writer suite): the test writes the row the way it would, to show
 * what a request sees before and after. Proves: 202 + Location with exactly one
 * `order.accepted` record per order; GET 404 until the row is written, then 200, and a 404 is never
 * cached; a keyed retry before the write publishes again with the same id (SQS dedup id = order id,
 * so still one record); after the write a keyed retry is a replay (nothing published) and another body
 * 422; a queue that does not answer gives 503 + Retry-After and no record; on Kafka a keyed retry
 * before the write is a second record with the same key (one partition; the writer keeps the first).
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Order } from '@trellis/contracts/orders-v1';
import { decodeOrderAccepted, type OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { kafkaClientConfig } from '@trellis/local/harness';
import kafkajs from 'kafkajs';
import { SqsOrderQueue, type QueuedOrder } from '@trellis/service-platform/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type OrdersApiOptions } from '@trellis/orders-api/app';
import { fingerprint, orderIdFor } from '@trellis/orders-api/idempotency';
import { ddl } from '@trellis/orders-api/schema';
import {
  CASSANDRA_ID,
  SQS_CREDENTIALS as CREDENTIALS,
  WRITE_PATH_QUEUE as QUEUE,
  createTopics,
  creds,
  stores,
  tlsOf,
} from '../support/service-stores.ts';

/** A service's Fastify instance (infra/local does not depend on fastify itself). */
type FastifyInstance = Awaited<ReturnType<typeof buildApp>>;
/** This suite's own intake topic: its Kafka test counts every record on it. */
const INTAKE = 'write-path.intake.v1';
const token = (claims: Record<string, unknown>): string =>
  Buffer.from(JSON.stringify(claims)).toString('base64url');
const alice = {
  'x-jwt-payload': token({ sub: 'alice', azp: 'web', scope: 'orders:write' }),
  'x-forwarded-client-cert':
    'By=spiffe://td/ns/shop/sa/orders-api;URI=spiffe://td/ns/edge/sa/ingress',
};
const bob = { 'x-jwt-payload': token({ sub: 'bob', scope: 'orders:write' }) };

/** The write-path suite: call inside the test file, after the stores' beforeAll. */
export function ordersApiWritePathSuite(): void {
  let reader: SqsOrderQueue | undefined;
  let app: FastifyInstance | undefined;
  const apps: FastifyInstance[] = [];
  const lines: Record<string, unknown>[] = [];

  function options(extra: Partial<OrdersApiOptions> = {}): OrdersApiOptions {
    const { cass, sqs, pki } = stores();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n'))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    return {
      // Its own identity: SELECT on keyspace orders only; Cassandra checked by its SPIFFE ID.
      cassandra: {
        contactPoints: [cass.contactPoint],
        localDataCenter: cass.localDataCenter,
        tls: { ...tlsOf(pki.ordersApi), serverId: CASSANDRA_ID },
      },
      // Unused with ORDERS_QUEUE=sqs; nothing listens there.
      kafka: { brokers: ['127.0.0.1:9'], clientId: 'orders-api-test' },
      queue: {
        kind: 'sqs',
        queueUrl: sqs.queueUrls[QUEUE] ?? '',
        region: sqs.region,
        endpoint: sqs.endpoint,
      },
      sqsCredentials: CREDENTIALS,
      migrate: false,
      publishTimeoutMs: 2_000,
      log: { level: 'info', stream: sink },
      ...extra,
    };
  }

  async function started(opts: OrdersApiOptions): Promise<FastifyInstance> {
    const a = await buildApp(opts);
    apps.push(a);
    await a.ready();
    const deadline = Date.now() + 60_000;
    while ((await a.inject({ method: 'GET', url: '/readyz' })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('orders-api not ready within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    return a;
  }

  const post = (body: Record<string, unknown>, headers: Record<string, string>, on = app) => {
    if (!on) throw new Error('app not started');
    return on.inject({ method: 'POST', url: '/orders', headers, payload: body });
  };
  const get = (id: string, headers: Record<string, string> = alice) => {
    if (!app) throw new Error('app not started');
    return app.inject({ method: 'GET', url: `/orders/${id}`, headers });
  };

  /** Every record on the queue now (deleting them), waiting up to 1 s per receive. */
  async function drain(): Promise<QueuedOrder[]> {
    if (!reader) throw new Error('no reader');
    const out: QueuedOrder[] = [];
    for (;;) {
      const b = await reader.receiveBatch(10, 1_000);
      if (b.orders.length === 0 && b.malformed.length === 0) return out;
      expect(b.malformed).toEqual([]);
      out.push(...b.orders);
      await reader.ack(b);
    }
  }

  /** Store an accepted order the way orders-writer does: its row, with the record's fingerprint. */
  async function write(record: OrderAccepted): Promise<void> {
    const o = record.order;
    await stores().cql.execute(
      'INSERT INTO orders.orders (id, sku, quantity, customer_ref, subject, created_at, request_hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [
        o.id,
        o.sku,
        o.quantity,
        o.customerRef ?? null,
        o.subject,
        new Date(o.createdAt),
        record.requestHash,
      ],
      { prepare: true },
    );
  }

  beforeAll(async () => {
    const { cql, sqs } = stores();
    // As the platform creates it (the model's topic); the producer never auto-creates one.
    await createTopics([INTAKE]);
    // The table (keyspace orders comes from the stores' bootstrap, as from the platform).
    for (const s of ddl) await cql.execute(s);
    reader = new SqsOrderQueue({
      queueUrl: sqs.queueUrls[QUEUE] ?? '',
      region: sqs.region,
      endpoint: sqs.endpoint,
      credentials: CREDENTIALS,
    });
    app = await started(options());
  }, 120_000);

  afterAll(async () => {
    for (const a of apps) await a.close();
    reader?.close();
  });

  describe('orders-api write path on SQS + Cassandra', () => {
    it('is ready with Cassandra and the SQS queue as its dependencies', async () => {
      const res = await app?.inject({ method: 'GET', url: '/readyz' });
      expect(res?.json()).toEqual({ status: 'ready', checks: { cassandra: true, sqs: true } });
    });

    it('accepts a keyless order: 202, Location, one order.accepted record; GET 404 until written, then 200', async () => {
      const res = await post({ sku: 'A-1', quantity: 2, customerRef: 'c-1' }, alice);
      expect(res.statusCode, res.body).toBe(202);
      const order = res.json<Order>();
      expect(order).toMatchObject({
        sku: 'A-1',
        quantity: 2,
        customerRef: 'c-1',
        subject: 'alice',
      });
      expect(Object.keys(order).sort()).toEqual(
        ['createdAt', 'customerRef', 'id', 'quantity', 'sku', 'subject'].sort(),
      );
      expect(res.headers.location).toBe(`/orders/${order.id}`);
      expect(res.headers['idempotent-replayed']).toBeUndefined();

      const records = await drain();
      expect(records).toHaveLength(1);
      const [r] = records;
      expect(r?.dedupId).toBe(order.id);
      expect(r?.event).toEqual({
        type: 'order.accepted',
        version: 1,
        order,
        requestHash: null,
        subject: 'alice',
        clientId: 'web',
        peer: 'spiffe://td/ns/edge/sa/ingress',
        requestId: res.headers['x-request-id'],
      });

      // Not written yet: 404, twice (the miss is not cached), then the writer stores it: 200.
      for (let i = 0; i < 2; i++) {
        const miss = await get(order.id);
        expect(miss.statusCode).toBe(404);
        expect(miss.json()).toMatchObject({ error: 'order_not_found' });
      }
      await write(r?.event as OrderAccepted);
      const found = await get(order.id);
      expect(found.statusCode).toBe(200);
      expect(found.json()).toEqual(order);
    });

    it('a keyed retry before the writer wrote publishes again with the same id (the same SQS dedup id: one record)', async () => {
      const body = { sku: 'B-2', quantity: 3 };
      const headers = { ...alice, 'idempotency-key': '"retry-1"' };
      const id = orderIdFor('alice', 'retry-1');
      const first = await post(body, headers);
      const second = await post(body, headers);
      for (const res of [first, second]) {
        expect(res.statusCode, res.body).toBe(202);
        expect(res.json<Order>().id).toBe(id);
        // Published, not answered from a stored row.
        expect(res.headers['idempotent-replayed']).toBeUndefined();
      }
      const accepted = lines.filter((l) => l.msg === 'order accepted' && l.orderId === id);
      expect(accepted).toHaveLength(2);
      // SQS stored the first send; the second, same deduplication id, is not a second record.
      const records = await drain();
      expect(records.map((r) => [r.event.order.id, r.dedupId])).toEqual([[id, id]]);
      expect(records[0]?.event.requestHash).toBe(fingerprint(body));
      expect(records[0]?.event.requestId).toBe(first.headers['x-request-id']);
    });

    it('after the write: the same key and body is a replay of the stored order (nothing published), another body 422, another subject its own order', async () => {
      const body = { sku: 'C-3', quantity: 1 };
      const headers = { ...alice, 'idempotency-key': 'replay-1' };
      const first = await post(body, headers);
      expect(first.statusCode).toBe(202);
      const [record] = await drain();
      expect(record?.event.order.id).toBe(orderIdFor('alice', 'replay-1'));
      await write(record?.event as OrderAccepted);

      const replay = await post(body, headers);
      expect(replay.statusCode).toBe(202);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.headers.location).toBe(`/orders/${record?.event.order.id}`);
      // The stored order (the first request's createdAt), not a new one.
      expect(replay.json()).toEqual(record?.event.order);

      const reused = await post({ sku: 'C-3', quantity: 2 }, headers);
      expect(reused.statusCode).toBe(422);
      expect(reused.json()).toMatchObject({
        error: 'idempotency_key_reused',
        field: 'headers.idempotency-key',
      });
      expect(await drain()).toEqual([]);

      const bobs = await post(body, { ...bob, 'idempotency-key': 'replay-1' });
      expect(bobs.statusCode).toBe(202);
      expect(bobs.json<Order>().id).toBe(orderIdFor('bob', 'replay-1'));
      expect(bobs.json<Order>().id).not.toBe(record?.event.order.id);
      expect((await drain()).map((r) => r.event.order.id)).toEqual([orderIdFor('bob', 'replay-1')]);
    });

    it('a queue that does not answer in PUBLISH_TIMEOUT_MS: 503 + Retry-After, no record, no order', async () => {
      // Accepts connections, never answers (an SQS endpoint that hangs).
      const sockets = new Set<Socket>();
      const hole = createServer((s) => sockets.add(s));
      await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
      const endpoint = `http://127.0.0.1:${(hole.address() as AddressInfo).port}`;
      try {
        const stuck = await started(
          options({
            publishTimeoutMs: 300,
            queue: {
              kind: 'sqs',
              queueUrl: `${endpoint}/000000000000/${QUEUE}`,
              region: 'elasticmq',
              endpoint,
            },
          }),
        );
        const headers = { ...alice, 'idempotency-key': 'down-1' };
        const res = await post({ sku: 'D-4', quantity: 1 }, headers, stuck);
        expect(res.statusCode).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        const id = orderIdFor('alice', 'down-1');
        expect(res.json()).toMatchObject({
          error: 'unavailable',
          orderId: id,
          message: expect.stringContaining('retry with the same idempotency-key'),
        });
        expect(await drain()).toEqual([]);
        expect((await get(id)).statusCode).toBe(404);

        // The positive control: the same key through the working queue is accepted, once.
        const ok = await post({ sku: 'D-4', quantity: 1 }, headers);
        expect(ok.statusCode).toBe(202);
        expect((await drain()).map((r) => r.event.order.id)).toEqual([id]);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => hole.close(r));
      }
    });

    it('a keyed POST needs the read: 503 (retry with the same key) while Cassandra is unreachable, nothing published', async () => {
      const noStore = await buildApp(
        options({ cassandra: { contactPoints: ['127.0.0.1:9'], localDataCenter: 'datacenter1' } }),
      );
      apps.push(noStore);
      await noStore.ready();
      const res = await post(
        { sku: 'E-5', quantity: 1 },
        { ...alice, 'idempotency-key': 'e' },
        noStore,
      );
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ message: expect.stringContaining('cassandra') });
      expect(await drain()).toEqual([]);
      // A keyless order needs only the queue.
      const keyless = await post({ sku: 'E-5', quantity: 1 }, alice, noStore);
      expect(keyless.statusCode).toBe(202);
      expect(await drain()).toHaveLength(1);
    });
  });

  /** Every record on the intake topic, from the beginning, read by a throwaway group. */
  async function intake(expected: number): Promise<kafkajs.KafkaMessage[]> {
    const { kafka, pki } = stores();
    const consumer = new kafkajs.Kafka(kafkaClientConfig(kafka, creds(pki.tester))).consumer({
      groupId: `reader-${Date.now()}`,
    });
    const got: kafkajs.KafkaMessage[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [INTAKE], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message);
        },
      });
      const deadline = Date.now() + 30_000;
      while (got.length < expected && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      // A moment more, so that an unexpected extra record would be seen too.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  describe('orders-api write path on Kafka (ORDERS_QUEUE=kafka, the default)', () => {
    it('is ready with Cassandra and Kafka; a keyed retry before the write is a second record with the same key; a keyless order one record', async () => {
      const { kafka, pki } = stores();
      const onKafka = await started(
        options({
          queue: { kind: 'kafka' },
          intakeTopic: INTAKE,
          kafka: {
            brokers: [kafka.bootstrap],
            clientId: 'orders-api-test',
            tls: tlsOf(pki.ordersApi),
          },
        }),
      );
      const ready = await onKafka.inject({ method: 'GET', url: '/readyz' });
      expect(ready.json()).toEqual({ status: 'ready', checks: { cassandra: true, kafka: true } });

      const body = { sku: 'K-1', quantity: 4 };
      const headers = { ...alice, 'idempotency-key': 'kafka-1' };
      const id = orderIdFor('alice', 'kafka-1');
      const first = await post(body, headers, onKafka);
      const second = await post(body, headers, onKafka);
      const keyless = await post({ sku: 'K-2', quantity: 1 }, alice, onKafka);
      for (const res of [first, second, keyless]) expect(res.statusCode, res.body).toBe(202);
      expect(second.json<Order>().id).toBe(id);

      const records = await intake(3);
      expect(records).toHaveLength(3);
      const keyed = records.filter((m) => m.key?.toString() === id);
      expect(keyed).toHaveLength(2);
      for (const m of keyed) {
        const r = decodeOrderAccepted(m.value);
        expect(r.order.id).toBe(id);
        expect(r.requestHash).toBe(fingerprint(body));
      }
      expect(keyed.map((m) => m.headers?.['x-request-id']?.toString())).toEqual([
        first.headers['x-request-id'],
        second.headers['x-request-id'],
      ]);
      const other = records.find((m) => m.key?.toString() !== id);
      expect(other?.key?.toString()).toBe(keyless.json<Order>().id);
      expect(decodeOrderAccepted(other?.value ?? null).requestHash).toBeNull();
    });
  });
}
