/**
 * orders-writer against the shared Cassandra 5 and Kafka 4 (KRaft) (support/service-stores.ts), as its
 * own workload identity over TLS; this suite is about exactly-once effect (the grants are the services
 * suite's concern). Moved from packages/services/orders-writer/test/writer.component.test.ts so that
 * the stores start once per run.
 * 1. In process: accepted records with duplicates, in-stream conflicts, ids already stored by another
 *    request, and malformed records → each order in Cassandra exactly once with the FIRST body; on
 *    orders.v1 exactly the orders stored with their record's fingerprint; offsets committed to the end.
 * 2. As a child process (`node src/server.ts`): kill -9 mid-stream, restart → 0 lost, 0 duplicated.
 * 3. The SQS FIFO intake (ElasticMQ): drained the same way, only what was written is deleted.
 * Its own topics (`writer.*`, `crash.*`, `sqs.*`) and consumer groups, so the other suites' records and
 * consumers never meet its own. It must run before any other suite writes keyspace `orders`: its first
 * test counts the whole table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodeOrderAccepted, type OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { decodeOrderCreated, type Order, type OrderCreated } from '@trellis/contracts/orders-v1';
import { migrate } from '@trellis/service-platform/cassandra';
import { SqsOrderQueue } from '@trellis/service-platform/queue';
import { freePort, kafkaClientConfig, waitUntil } from '@trellis/local/harness';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWriter, type OrdersWriterApp } from '@trellis/orders-writer/app';
import { ddl, KEYSPACE } from '@trellis/orders-writer/schema';
import {
  CASSANDRA_ID,
  SQS_CREDENTIALS,
  WRITER_QUEUE,
  WRITER_QUEUE_VISIBILITY_S as SQS_VISIBILITY_S,
  createTopics,
  creds,
  logTo,
  stores,
  tlsOf,
} from '../support/service-stores.ts';

const PKG = resolve(import.meta.dirname, '../../../../packages/services/orders-writer');
/** This suite's own topics and group for the in-process writer (not the services suite's). */
const INTAKE = 'writer.intake.v1';
const ORDERS = 'writer.orders.v1';
const GROUP = 'writer-suite';

/** The writer suite: call inside the test file, after the stores' beforeAll. */
export function ordersWriterSuite(): void {
  const children: ChildProcess[] = [];
  let client: kafkajs.Kafka;
  let producer: kafkajs.Producer;
  let writer: OrdersWriterApp | undefined;
  const cql = () => stores().cql;
  const admin = () => stores().admin;

  /** orders-writer's options: its own identity on both stores. */
  function writerStores() {
    const { cass, kafka, pki } = stores();
    return {
      cassandra: {
        contactPoints: [cass.contactPoint],
        localDataCenter: cass.localDataCenter,
        tls: { ...tlsOf(pki.ordersWriter), serverId: CASSANDRA_ID },
      },
      kafka: {
        brokers: [kafka.bootstrap],
        clientId: 'orders-writer',
        tls: tlsOf(pki.ordersWriter),
      },
    };
  }

  const hash = (s: string): string => createHash('sha256').update(s).digest('hex');

  function accepted(
    id: string,
    body: { sku: string; quantity: number },
    keyed = true,
  ): OrderAccepted {
    const order: Order = {
      id,
      sku: body.sku,
      quantity: body.quantity,
      subject: 'alice',
      createdAt: new Date().toISOString(),
    };
    return {
      type: 'order.accepted',
      version: 1,
      order,
      requestHash: keyed ? hash(`${body.sku}/${body.quantity}`) : null,
      subject: 'alice',
      clientId: 'web',
      requestId: `req-${randomUUID()}`,
    };
  }

  async function produce(
    topic: string,
    records: readonly (OrderAccepted | Buffer)[],
  ): Promise<void> {
    await producer.send({
      topic,
      acks: -1,
      messages: records.map((r) =>
        Buffer.isBuffer(r)
          ? { key: randomUUID(), value: r }
          : { key: r.order.id, value: encodeOrderAccepted(r) },
      ),
    });
  }

  /** The group has committed every partition of the topic to its end (everything written and emitted). */
  async function caughtUp(groupId: string, topic: string): Promise<boolean> {
    const ends = await admin().fetchTopicOffsets(topic);
    const [committed] = await admin().fetchOffsets({ groupId, topics: [topic] });
    return ends.every((e) => {
      const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1';
      return BigInt(e.high) === 0n || BigInt(c) === BigInt(e.high);
    });
  }

  /** Every record of a topic, up to its current end, read by a throwaway group. */
  async function readAll(topic: string): Promise<OrderCreated[]> {
    const ends = await admin().fetchTopicOffsets(topic);
    const want = new Map(
      ends.filter((e) => e.high !== '0').map((e) => [e.partition, BigInt(e.high)]),
    );
    const seen = new Map<number, bigint>();
    const out: OrderCreated[] = [];
    const consumer = client.consumer({ groupId: `reader-${randomUUID()}` });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          out.push(decodeOrderCreated(message.value));
          seen.set(partition, BigInt(message.offset) + 1n);
        },
      });
      await waitUntil(async () => [...want].every(([p, end]) => (seen.get(p) ?? 0n) >= end), {
        what: `all of ${topic}`,
        timeoutMs: 30_000,
        intervalMs: 100,
      });
    } finally {
      await consumer.disconnect();
    }
    return out;
  }

  async function rowsOf(
    ids: readonly string[],
  ): Promise<Map<string, { sku: string; quantity: number; hash: string | null }>> {
    const out = new Map<string, { sku: string; quantity: number; hash: string | null }>();
    for (const id of ids) {
      const row = (
        await cql().execute(
          `SELECT sku, quantity, request_hash FROM ${KEYSPACE}.orders WHERE id = ?`,
          [id],
          {
            prepare: true,
          },
        )
      ).first();
      if (row)
        out.set(id, {
          sku: row.get('sku') as string,
          quantity: row.get('quantity') as number,
          hash: (row.get('request_hash') as string | null) ?? null,
        });
    }
    return out;
  }

  beforeAll(async () => {
    const { kafka, pki } = stores();
    // The table, as the platform would apply it (the test inserts rows before a writer connects).
    await migrate(cql(), ddl);
    client = new kafkajs.Kafka({
      ...kafkaClientConfig(kafka, creds(pki.tester), 'writer-test'),
      logLevel: kafkajs.logLevel.NOTHING,
    });
    await createTopics([INTAKE, ORDERS, 'crash.intake.v1', 'crash.orders.v1', 'sqs.orders.v1']);
    producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await writer?.app.close();
    await producer?.disconnect();
  }, 120_000);

  describe('orders-writer: intake topic → Cassandra → orders topic', () => {
    it('stores each order once with the first body and emits exactly the orders it stored', async () => {
      const fresh = Array.from({ length: 40 }, (_, i) =>
        accepted(randomUUID(), { sku: `SKU-${i}`, quantity: 1 + (i % 5) }, i % 4 !== 0),
      );
      // Retries of accepted orders (same fingerprint): no second row, the event may come again.
      const retries = fresh.slice(0, 10).map((r) => ({ ...r, requestId: `retry-${r.requestId}` }));
      // The same id with another body after the first (a key reused): the first wins, dropped.
      const reused = fresh
        .filter((r) => r.requestHash !== null)
        .slice(0, 5)
        .map((r) => accepted(r.order.id, { sku: 'OTHER', quantity: 999 }));
      // Ids already stored by another request: every record of them conflicts, none is emitted.
      const taken = [randomUUID(), randomUUID()];
      for (const id of taken) {
        await cql().execute(
          `INSERT INTO ${KEYSPACE}.orders (id, sku, quantity, subject, created_at, request_hash) VALUES (?, 'FIRST', 1, 'bob', ?, ?)`,
          [id, new Date(), hash('FIRST/1')],
          { prepare: true },
        );
      }
      const stolen = taken.map((id) => accepted(id, { sku: 'LATE', quantity: 2 }));
      const malformed = [
        Buffer.from('{not json'),
        Buffer.from(JSON.stringify({ type: 'order.created' })),
      ];

      writer = await buildWriter({
        ...writerStores(),
        intakeTopic: INTAKE,
        ordersTopic: ORDERS,
        groupId: GROUP,
        // Small chunks: duplicates and conflicts land both within one chunk and across chunks.
        batchMax: 7,
        batchWaitMs: 20,
        log: logTo('writer-inprocess'),
      });
      await writer.app.ready();
      await produce(INTAKE, [...fresh.slice(0, 20), ...reused.slice(0, 2), ...stolen]);
      await produce(INTAKE, [...malformed, ...fresh.slice(20), ...retries, ...reused.slice(2)]);
      await waitUntil(async () => caughtUp(GROUP, INTAKE), {
        what: `orders-writer committed ${INTAKE} to its end`,
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      expect((await writer.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
        status: 'ready',
        checks: { cassandra: true, kafka: true, queue: true },
      });

      const rows = await rowsOf([...fresh.map((r) => r.order.id), ...taken]);
      expect(rows.size).toBe(42);
      for (const r of fresh) {
        expect(rows.get(r.order.id)).toEqual({
          sku: r.order.sku,
          quantity: r.order.quantity,
          hash: r.requestHash,
        });
      }
      for (const id of taken)
        expect(rows.get(id)).toEqual({ sku: 'FIRST', quantity: 1, hash: hash('FIRST/1') });
      expect(
        Number(
          (await cql().execute(`SELECT COUNT(*) AS n FROM ${KEYSPACE}.orders`)).first()?.get('n'),
        ),
      ).toBe(42);

      const events = await readAll(ORDERS);
      const byId = new Map(fresh.map((r) => [r.order.id, r]));
      // Exactly the fresh orders: not the taken ids, never a reused body.
      expect(new Set(events.map((e) => e.order.id))).toEqual(new Set(byId.keys()));
      for (const e of events) expect(e.order).toEqual(byId.get(e.order.id)?.order);
      const allowedRequestIds = new Set([...fresh, ...retries].map((r) => r.requestId));
      for (const e of events) expect(allowedRequestIds).toContain(e.requestId);
      expect(writer.writer.stats).toMatchObject({ written: 40, conflicts: 7, malformed: 2 });
      await writer.app.close();
      writer = undefined;
    });

    it('survives kill -9 mid-stream: after a restart, 0 orders lost and 0 duplicated', async () => {
      const { cass, kafka, pki } = stores();
      // Its own workload identity, as the local stack runs it.
      const own = pki.ordersWriter;
      const port = await freePort();
      const env = {
        PATH: process.env.PATH,
        PORT: String(port),
        CASSANDRA_CONTACT_POINTS: cass.contactPoint,
        CASSANDRA_LOCAL_DC: cass.localDataCenter,
        CASSANDRA_TLS_CA_FILE: own.truststore,
        CASSANDRA_TLS_CERT_FILE: own.cert,
        CASSANDRA_TLS_KEY_FILE: own.key,
        CASSANDRA_TLS_SERVER_ID: CASSANDRA_ID,
        KAFKA_BROKERS: kafka.bootstrap,
        KAFKA_TLS_CA_FILE: own.truststore,
        KAFKA_TLS_CERT_FILE: own.cert,
        KAFKA_TLS_KEY_FILE: own.key,
        INTAKE_TOPIC: 'crash.intake.v1',
        ORDERS_TOPIC: 'crash.orders.v1',
        KAFKA_GROUP_ID: 'orders-writer-crash',
        WRITER_BATCH_MAX: '10',
        LOG_LEVEL: 'info',
      };
      const start = (n: number): ChildProcess => {
        const out = openSync(join(stores().dir, `writer-child-${n}.log`), 'a');
        const child = spawn(process.execPath, ['src/server.ts'], {
          cwd: PKG,
          env,
          stdio: ['ignore', out, out],
        });
        closeSync(out);
        children.push(child);
        return child;
      };
      const records = Array.from({ length: 300 }, (_, i) =>
        accepted(randomUUID(), { sku: `C-${i}`, quantity: 1 }),
      );
      // A third of them twice, as client retries would be.
      const stream = [
        ...records,
        ...records
          .filter((_, i) => i % 3 === 0)
          .map((r) => ({ ...r, requestId: `again-${r.requestId}` })),
      ];
      const ids = records.map((r) => r.order.id);
      // A count is cheap enough to poll; the rows before this test are not its own.
      const count = async (): Promise<number> =>
        Number(
          (await cql().execute(`SELECT COUNT(*) AS n FROM ${KEYSPACE}.orders`)).first()?.get('n'),
        );
      const before = await count();
      const stored = async (): Promise<number> => (await count()) - before;
      const ready = async (): Promise<boolean> =>
        (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200;

      const first = start(1);
      await waitUntil(ready, { what: 'the writer ready', timeoutMs: 60_000, intervalMs: 100 });
      const producing = (async () => {
        for (let i = 0; i < stream.length; i += 20) {
          await produce('crash.intake.v1', stream.slice(i, i + 20));
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await waitUntil(async () => (await stored()) >= 60, {
        what: '60 orders written',
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      first.kill('SIGKILL');
      await new Promise<void>((r) =>
        first.exitCode !== null || first.signalCode !== null ? r() : first.once('exit', () => r()),
      );
      const atKill = await stored();
      expect(first.signalCode).toBe('SIGKILL');
      await producing;
      expect(atKill).toBeLessThan(records.length);

      const second = start(2);
      await waitUntil(async () => caughtUp('orders-writer-crash', 'crash.intake.v1'), {
        what: 'the restarted writer committed crash.intake.v1 to its end',
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      expect(await ready()).toBe(true);
      second.kill('SIGTERM');

      const rows = await rowsOf(ids);
      expect(rows.size).toBe(records.length);
      for (const r of records) expect(rows.get(r.order.id)?.sku).toBe(r.order.sku);
      // Nothing else was written: no second row under some other id.
      expect(await count()).toBe(before + records.length);
      const events = await readAll('crash.orders.v1');
      expect(new Set(events.map((e) => e.order.id))).toEqual(new Set(ids));
      process.stderr.write(
        `[writer] kill -9 at ${atKill}/${records.length} stored; ${events.length} events for ${records.length} orders after restart\n`,
      );
    });

    it('drains the SQS FIFO queue (ElasticMQ) the same way, and deletes only what it wrote', async () => {
      const { sqs } = stores();
      const url = sqs.queueUrls[WRITER_QUEUE] ?? '';
      const sender = new SqsOrderQueue({
        queueUrl: url,
        region: sqs.region,
        endpoint: sqs.endpoint,
        credentials: SQS_CREDENTIALS,
      });
      const records = Array.from({ length: 25 }, (_, i) =>
        accepted(randomUUID(), { sku: `Q-${i}`, quantity: 2 }),
      );
      for (const r of records) await sender.publish(r, r.order.id);
      // A retried publish within the deduplication interval: accepted by SQS, not stored again.
      await sender.publish(records[0]!, records[0]!.order.id);

      const w = await buildWriter({
        ...writerStores(),
        queue: { kind: 'sqs', queueUrl: url, region: sqs.region, endpoint: sqs.endpoint },
        sqsCredentials: SQS_CREDENTIALS,
        ordersTopic: 'sqs.orders.v1',
        batchMax: 10,
        log: logTo('writer-sqs'),
      });
      writer = w;
      await w.app.ready();
      const ids = records.map((r) => r.order.id);
      await waitUntil(
        async () => (await rowsOf(ids)).size === ids.length && w.writer.stats.emitted >= ids.length,
        {
          what: 'every SQS order written and emitted',
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      );
      // Acked means deleted: nothing comes back after the visibility timeout.
      await new Promise((r) => setTimeout(r, SQS_VISIBILITY_S * 1000 + 500));
      expect(w.writer.stats.chunks).toBeGreaterThanOrEqual(3);
      await w.app.close();
      writer = undefined;
      expect((await sender.receiveBatch(10, 1_000)).orders).toEqual([]);
      sender.close();
      const rows = await rowsOf(ids);
      for (const r of records) expect(rows.get(r.order.id)?.sku).toBe(r.order.sku);
      const events = await readAll('sqs.orders.v1');
      expect(new Set(events.map((e) => e.order.id))).toEqual(new Set(ids));
    });
  });
}
