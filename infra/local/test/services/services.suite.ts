/**
 * orders-api, orders-writer and ledger against the shared Cassandra 5 and Kafka 4 (KRaft) of
 * support/service-stores.ts (TLS and client certificates required, as in the local stack; Cassandra
 * authenticates clients by the SPIFFE ID in their certificate and authorizes per keyspace: orders-api
 * may only read keyspace orders, orders-writer writes it, ADR 0022). orders-api and orders-writer
 * connect directly with their workload certificates (Cassandra checked by SPIFFE ID); ledger connects
 * through a local TCP proxy with fixed address translation, as it would through its sidecar's egress
 * port.
 * Proves: POST → 202 on the intake topic, the writer stores it and GET reads it back; the orders.v1
 * event (from the writer) carries the token's subject; ledger projects it; concurrent keyed retries over
 * two replicas are one order; replays (a duplicate record, a rewound consumer group) do not double
 * count; offsets are committed only after the projection is written; SIGTERM drains the services.
 * It owns the default topics (orders.intake.v1, orders.v1), groups (orders-writer, ledger) and keyspace
 * ledger; the other suites use their own topics and groups.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  freePort,
  kafkaClientConfig,
  waitUntil,
  type CassandraServer,
  type KafkaServer,
} from '@trellis/local/harness';
import { buildApp as buildOrdersApi, type OrdersApiOptions } from '@trellis/orders-api/app';
import { orderIdFor } from '@trellis/orders-api/idempotency';
import { buildWriter, type OrdersWriterApp } from '@trellis/orders-writer/app';
import { ORDERS_INTAKE_TOPIC } from '@trellis/contracts/orders-intake-v1';
import { decodeOrderCreated, encodeOrderCreated, type Order } from '@trellis/contracts/orders-v1';
import type cassandra from 'cassandra-driver';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLedger, type LedgerApp, type LedgerOptions } from '@trellis/ledger/app';
import {
  CASSANDRA_ID,
  TRUST,
  createTopics,
  creds,
  logTo,
  stores,
  tlsOf,
  type Pki,
} from '../support/service-stores.ts';

const TOPIC = 'orders.v1';
/** The edge's trace context on the first POST (what the sidecar forwards). */
const EDGE_TRACE_ID = '5b8efff798038103d269b633813fc60c';
const EDGE_SPAN_ID = 'eee19b7ec3c1b174';
const EDGE_TRACEPARENT = `00-${EDGE_TRACE_ID}-${EDGE_SPAN_ID}-01`;
const inEdgeTrace = (s: { spanContext(): { traceId: string } }): boolean =>
  s.spanContext().traceId === EDGE_TRACE_ID;
/** A service's Fastify instance (infra/local does not depend on fastify itself). */
type FastifyInstance = Awaited<ReturnType<typeof buildOrdersApi>>;
const SERVICES = resolve(import.meta.dirname, '../../../../packages/services');
const logs: WriteStream[] = [];
const children: ChildProcess[] = [];
const proxies: Server[] = [];
let pki: Pki;
let cass: CassandraServer | undefined;
let kafka: KafkaServer | undefined;
let cql: cassandra.Client;
let admin: kafkajs.Admin;
let ordersApi: FastifyInstance;
let writer: OrdersWriterApp | undefined;
let ledger: LedgerApp | undefined;
let cassandraProxy: Proxy;
let kafkaProxy: Proxy;

/** The spans each service exported (issue 15 traces): its own in-memory exporter. */
type SpanExporter = NonNullable<NonNullable<OrdersApiOptions['tracing']>['exporter']>;
type ExportedSpan = Parameters<SpanExporter['export']>[0][number];
const spans: Record<'orders-api' | 'orders-writer' | 'ledger', ExportedSpan[]> = {
  'orders-api': [],
  'orders-writer': [],
  ledger: [],
};
function tracingTo(service: keyof typeof spans): NonNullable<OrdersApiOptions['tracing']> {
  const exporter: SpanExporter = {
    export: (batch, done) => {
      spans[service].push(...batch);
      done({ code: 0 });
    },
    shutdown: async () => undefined,
  };
  return { serviceName: service, exporter };
}

/** A plain TCP proxy on a free loopback port (what a sidecar's egress listener is to the app). */
interface Proxy {
  address: string;
  /** Connections opened through it so far. */
  connections: number;
}

async function startProxy(target: string): Promise<Proxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const p: Proxy = { address: '', connections: 0 };
  const server = createServer((client: Socket) => {
    p.connections++;
    const upstream = netConnect({ host, port });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const listenPort = await freePort();
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  proxies.push(server);
  p.address = `127.0.0.1:${listenPort}`;
  return p;
}

/** Client TLS files of one workload, as the services take them. */
const claims = (sub: string): string =>
  Buffer.from(JSON.stringify({ sub, azp: 'web', scope: 'orders:write' })).toString('base64url');
const identity = {
  'x-jwt-payload': claims('alice'),
  'x-forwarded-client-cert':
    'By=spiffe://trellis.local/ns/shop/sa/orders-api;Hash=00;URI=spiffe://trellis.local/ns/edge/sa/ingress',
};

function ledgerOptions(extra: Partial<LedgerOptions> = {}): LedgerOptions {
  if (!cass || !kafka) throw new Error('stores not started');
  return {
    // Through the proxies: contact point and bootstrap are the proxy, and so is every node address.
    cassandra: {
      contactPoints: [cassandraProxy.address],
      localDataCenter: cass.localDataCenter,
      translateTo: cassandraProxy.address,
      tls: { ...tlsOf(pki.ledger), serverId: CASSANDRA_ID },
    },
    kafka: {
      brokers: [kafkaProxy.address],
      clientId: 'ledger',
      translateTo: kafkaProxy.address,
      tls: tlsOf(pki.ledger),
    },
    log: logTo(`ledger-${Date.now()}`),
    ...extra,
  };
}

async function ready(app: FastifyInstance, what: string): Promise<void> {
  await waitUntil(
    async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200,
    {
      what,
      timeoutMs: 60_000,
      intervalMs: 200,
    },
  );
}

/** GET the order until orders-writer has stored it (404 until then); returns the stored order. */
async function written(id: string, app: FastifyInstance = ordersApi): Promise<Order> {
  return waitUntil(
    async () => {
      const res = await app.inject({ method: 'GET', url: `/orders/${id}`, headers: identity });
      if (res.statusCode === 404) return null;
      expect(res.statusCode, res.body).toBe(200);
      return res.json<Order>();
    },
    { what: `order ${id} stored by orders-writer`, timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** POST an order (202: on the intake topic), then wait until the writer has stored it. */
async function createOrder(body: Record<string, unknown>): Promise<Order> {
  const res = await ordersApi.inject({
    method: 'POST',
    url: '/orders',
    headers: identity,
    payload: body,
  });
  expect(res.statusCode, res.body).toBe(202);
  const accepted = res.json<Order>();
  expect(await written(accepted.id)).toEqual(accepted);
  return accepted;
}

async function entryCount(): Promise<number> {
  const rs = await cql.execute('SELECT COUNT(*) AS n FROM ledger.order_entries');
  return Number(rs.first()?.get('n'));
}

/** All records on the topic, read by a throwaway consumer group from the beginning. */
async function readTopic(expected: number): Promise<kafkajs.KafkaMessage[]> {
  if (!kafka) throw new Error('kafka not started');
  const consumer = new kafkajs.Kafka(
    kafkaClientConfig(kafka, creds(pki.tester), 'test-reader'),
  ).consumer({
    groupId: `test-reader-${Date.now()}`,
  });
  const seen: kafkajs.KafkaMessage[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message);
      },
    });
    await waitUntil(async () => seen.length >= expected, {
      what: `${expected} records on ${TOPIC}`,
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

function ordersApiOptions(extra: Partial<OrdersApiOptions> = {}): OrdersApiOptions {
  if (!cass || !kafka) throw new Error('stores not started');
  // Directly, with the workload certificate; Cassandra is checked by its SPIFFE ID, Kafka by IP SAN.
  return {
    cassandra: {
      contactPoints: [cass.contactPoint],
      localDataCenter: cass.localDataCenter,
      tls: { ...tlsOf(pki.ordersApi), serverId: CASSANDRA_ID },
    },
    kafka: { brokers: [kafka.bootstrap], clientId: 'orders-api', tls: tlsOf(pki.ordersApi) },
    // orders-api may only read keyspace orders: the writer applies the table.
    migrate: false,
    log: logTo(`orders-api-${Date.now()}`),
    ...extra,
  };
}

/** The services suite: call inside the test file, after the stores' beforeAll. */
export function servicesSuite(): void {
  describe('services: orders-api, orders-writer and ledger over TLS, as their own identities', () => {
    beforeAll(async () => {
      ({ cass, kafka, cql, admin, pki } = stores());
      // The topics, as the platform creates them. The services create their tables only.
      await createTopics([TOPIC, ORDERS_INTAKE_TOPIC]);
      cassandraProxy = await startProxy(cass.contactPoint);
      kafkaProxy = await startProxy(kafka.bootstrap);

      // The writer first: it applies the orders table, which orders-api (SELECT only) then reads.
      writer = await buildWriter({
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
        log: logTo(`orders-writer-${Date.now()}`),
        tracing: tracingTo('orders-writer'),
      });
      await writer.app.ready();
      await ready(writer.app, 'orders-writer ready');
      ordersApi = await buildOrdersApi(ordersApiOptions({ tracing: tracingTo('orders-api') }));
      await ordersApi.ready();
      ledger = await buildLedger(ledgerOptions({ tracing: tracingTo('ledger') }));
      await ledger.app.ready();
      await Promise.all([ready(ordersApi, 'orders-api ready'), ready(ledger.app, 'ledger ready')]);
    }, 400_000);

    afterAll(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const p of proxies) p.close();
      await ordersApi?.close();
      await writer?.app.close();
      await ledger?.app.close();
      for (const s of logs) s.end();
    }, 120_000);

    describe('orders-api → orders.intake.v1 → orders-writer → Cassandra, orders.v1 → ledger', () => {
      let order: Order;

      it('POST /orders answers 202 with the order and its Location; GET is 404 until the writer stored it', async () => {
        const res = await ordersApi.inject({
          method: 'POST',
          url: '/orders',
          headers: { ...identity, 'x-request-id': 'smoke-1', traceparent: EDGE_TRACEPARENT },
          payload: { sku: 'SKU-42', quantity: 3, customerRef: 'c-7' },
        });
        expect(res.statusCode, res.body).toBe(202);
        order = res.json<Order>();
        expect(order).toMatchObject({
          sku: 'SKU-42',
          quantity: 3,
          customerRef: 'c-7',
          subject: 'alice',
        });
        expect(res.headers.location).toBe(`/orders/${order.id}`);
        expect(res.headers['x-request-id']).toBe('smoke-1');
        expect(await written(order.id)).toEqual(order);
      });

      it('one trace runs from the edge through orders-api, the intake record, the writer and Cassandra, orders.v1, to the ledger’s write', async () => {
        const app = ledger?.app;
        if (!app || !writer) throw new Error('services not running');
        await waitUntil(
          async () => {
            await Promise.all([ordersApi, writer?.app, app].map((a) => a?.tracing.flush()));
            return spans.ledger.some(
              (s) => s.name === 'INSERT ledger.order_entries' && inEdgeTrace(s),
            );
          },
          { what: "the ledger's write span", timeoutMs: 30_000, intervalMs: 200 },
        );
        const one = (service: keyof typeof spans, name: string): ExportedSpan => {
          const found = spans[service].filter((s) => s.name === name && inEdgeTrace(s));
          expect(
            found.map((s) => s.name),
            `${service}: ${name}`,
          ).toEqual([name]);
          return found[0] as ExportedSpan;
        };
        const server = one('orders-api', 'POST /orders');
        const intake = one('orders-api', 'send orders.intake.v1');
        const process = one('orders-writer', 'process orders.intake.v1');
        const read = one('orders-writer', 'SELECT orders.orders');
        const write = one('orders-writer', 'BATCH INSERT orders.orders');
        const emit = one('orders-writer', 'send orders.v1');
        const consume = one('ledger', 'process orders.v1');
        const project = one('ledger', 'INSERT ledger.order_entries');
        const parent = (s: ExportedSpan) => s.parentSpanContext?.spanId;
        const id = (s: ExportedSpan) => s.spanContext().spanId;
        expect(parent(server)).toBe(EDGE_SPAN_ID);
        expect(parent(intake)).toBe(id(server));
        expect(parent(process)).toBe(id(intake));
        expect([parent(read), parent(write), parent(emit)]).toEqual([
          id(process),
          id(process),
          id(process),
        ]);
        expect(parent(consume)).toBe(id(emit));
        expect(parent(project)).toBe(id(consume));
        expect(server.attributes['user.id']).toBe('alice');
        expect(process.attributes['trellis.order.id']).toBe(order.id);
      });

      it('GET /orders/:id reads it back from Cassandra, and 404s an unknown id', async () => {
        const res = await ordersApi.inject({
          method: 'GET',
          url: `/orders/${order.id}`,
          headers: identity,
        });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual(order);
        const missing = await ordersApi.inject({
          method: 'GET',
          url: '/orders/00000000-0000-4000-8000-000000000000',
          headers: identity,
        });
        expect(missing.statusCode).toBe(404);
      });

      it('orders-writer emits orders.v1 keyed by order id, carrying the subject, client, peer and request id', async () => {
        const records = await readTopic(1);
        const mine = records.filter((m) => m.key?.toString() === order.id);
        expect(mine).toHaveLength(1);
        const event = decodeOrderCreated(mine[0]?.value ?? null);
        expect(event.subject).toBe('alice');
        expect(event.order).toEqual(order);
        expect(event.clientId).toBe('web');
        expect(event.peer).toBe('spiffe://trellis.local/ns/edge/sa/ingress');
        expect(event.requestId).toBe('smoke-1');
      });

      it("ledger's projection appears", async () => {
        const app = ledger?.app;
        if (!app) throw new Error('ledger not running');
        const entry = await waitUntil(
          async () => {
            const res = await app.inject({
              method: 'GET',
              url: `/entries/${order.id}`,
              headers: identity,
            });
            return res.statusCode === 200 ? res.json<Record<string, unknown>>() : null;
          },
          { what: 'ledger entry', timeoutMs: 30_000, intervalMs: 100 },
        );
        expect(entry).toMatchObject({
          orderId: order.id,
          sku: 'SKU-42',
          quantity: 3,
          subject: 'alice',
          orderedAt: order.createdAt,
          requestId: 'smoke-1',
        });
      });

      it('40 concurrent orders: all 202, each stored, one orders.v1 record each, all projected', async () => {
        const orders = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            createOrder({ sku: `SKU-${i}`, quantity: (i % 10) + 1 }),
          ),
        );
        const records = await readTopic(41);
        const keys = records.map((m) => m.key?.toString());
        for (const o of orders) expect(keys.filter((k) => k === o.id)).toHaveLength(1);
        await waitUntil(async () => (await entryCount()) === 41, {
          what: '41 ledger entries',
          timeoutMs: 30_000,
          intervalMs: 200,
        });
      });
    });

    describe('Idempotency-Key across replicas, and the read cache', () => {
      // A second replica of orders-api on the same stores: a retry may land on either.
      let replica: FastifyInstance;
      let entriesBefore: number;
      const ids = new Set<string>();

      beforeAll(async () => {
        replica = await buildOrdersApi(ordersApiOptions());
        await replica.ready();
        await ready(replica, 'second orders-api ready');
        entriesBefore = await entryCount();
      }, 120_000);
      afterAll(async () => {
        await replica?.close();
      });

      const as = (sub: string) => ({ ...identity, 'x-jwt-payload': claims(sub) });
      const postKeyed = (
        app: FastifyInstance,
        key: string,
        body: Record<string, unknown>,
        sub = 'alice',
      ) =>
        app.inject({
          method: 'POST',
          url: '/orders',
          headers: { ...as(sub), 'idempotency-key': `"${key}"` },
          payload: body,
        });
      const rowsWithSku = async (sku: string): Promise<string[]> =>
        (
          await cql.execute('SELECT id FROM orders.orders WHERE sku = ? ALLOW FILTERING', [sku], {
            prepare: true,
          })
        ).rows.map((r) => String(r.get('id')));
      const lookups = async (app: FastifyInstance): Promise<{ hit: number; miss: number }> => {
        const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
        const n = (result: string): number =>
          Number(
            new RegExp(
              `^orders_api_order_cache_lookups_total\\{result="${result}"\\} (\\d+)$`,
              'm',
            ).exec(text)?.[1] ?? NaN,
          );
        return { hit: n('hit'), miss: n('miss') };
      };

      it('20 concurrent requests with one key, over two replicas, before the write: one order, one row, one event', async () => {
        const key = `race-${randomUUID()}`;
        const body = { sku: 'IDEM-RACE', quantity: 7 };
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            postKeyed(i % 2 === 0 ? ordersApi : replica, key, body),
          ),
        );
        expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 202));
        const id = orderIdFor('alice', key);
        expect(new Set(answers.map((a) => a.json<Order>().id))).toEqual(new Set([id]));
        const stored = await written(id);
        expect(stored).toMatchObject({ id, ...body, subject: 'alice' });
        expect(await rowsWithSku('IDEM-RACE')).toEqual([id]);
        // Once stored, a retry on either replica is a replay of the stored order.
        const retry = await postKeyed(replica, key, body);
        expect(retry.statusCode).toBe(202);
        expect(retry.headers['idempotent-replayed']).toBe('true');
        expect(retry.json()).toEqual(stored);
        ids.add(id);
      });

      it('the same key with a different body, once stored, is refused with 422 on the other replica', async () => {
        const key = `reuse-${randomUUID()}`;
        const first = await postKeyed(ordersApi, key, { sku: 'IDEM-REUSE', quantity: 1 });
        expect(first.statusCode).toBe(202);
        const stored = await written(first.json<Order>().id);
        const res = await postKeyed(replica, key, { sku: 'IDEM-REUSE-2', quantity: 1 });
        expect(res.statusCode).toBe(422);
        expect(res.json()).toMatchObject({ error: 'idempotency_key_reused' });
        expect(await written(stored.id, replica)).toEqual(stored);
        expect(await rowsWithSku('IDEM-REUSE-2')).toEqual([]);
        ids.add(stored.id);
      });

      it('every order above is projected exactly once by the ledger', async () => {
        await waitUntil(async () => (await entryCount()) === entriesBefore + ids.size, {
          what: `${ids.size} new ledger entries`,
          timeoutMs: 30_000,
          intervalMs: 200,
        });
        for (const id of ids) expect(await ledger?.store.get(id)).toMatchObject({ orderId: id });
      });

      it('GET /orders/:id: repeated reads come from the cache, behind authentication, each the order asked for', async () => {
        const mine = await createOrder({ sku: 'CACHE-ALICE', quantity: 1 });
        const bobs = await ordersApi.inject({
          method: 'POST',
          url: '/orders',
          headers: as('bob'),
          payload: { sku: 'CACHE-BOB', quantity: 2 },
        });
        expect(bobs.statusCode).toBe(202);
        const theirs = await written(bobs.json<Order>().id, replica);
        const get = (id: string, headers: Record<string, string>) =>
          ordersApi.inject({ method: 'GET', url: `/orders/${id}`, headers });
        // `createOrder` read alice's order through this replica once (a miss, now cached).
        const before = await lookups(ordersApi);
        for (let i = 0; i < 5; i++) {
          const a = await get(mine.id, as('alice'));
          const b = await get(theirs.id, as('bob'));
          expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
          expect(a.json()).toEqual(mine);
          expect(b.json()).toEqual(theirs);
        }
        const after = await lookups(ordersApi);
        // One miss (bob's order, first read here), every later read a hit.
        expect(after.miss - before.miss).toBe(1);
        expect(after.hit - before.hit).toBe(9);
        const ratio = (m: { hit: number; miss: number }) => m.hit / (m.hit + m.miss);
        expect(ratio(after)).toBeGreaterThan(ratio(before));
        // A cached order still needs an identity: 401, and the lookup never happens.
        const anonymous = await ordersApi.inject({ method: 'GET', url: `/orders/${mine.id}` });
        expect(anonymous.statusCode).toBe(401);
        expect(await lookups(ordersApi)).toEqual(after);
        // The id in the path, in any case, selects the entry: upper case reads the same cached order.
        const upper = await get(mine.id.toUpperCase(), as('alice'));
        expect(upper.json()).toEqual(mine);
        expect((await lookups(ordersApi)).hit).toBe(after.hit + 1);
      });
    });

    describe('connection modes', () => {
      it('ledger dials the broker named in the metadata through the proxy too (address translation)', () => {
        // Without translation only the bootstrap connection would use the proxy; kafkajs then dials the
        // advertised listener for the broker itself.
        expect(kafkaProxy.connections).toBeGreaterThanOrEqual(2);
        expect(cassandraProxy.connections).toBeGreaterThanOrEqual(1);
      });

      it('refuses a Cassandra node whose certificate is not the expected SPIFFE identity', async () => {
        if (!cass) throw new Error('not started');
        const opts = ordersApiOptions();
        const app = await buildOrdersApi({
          ...opts,
          cassandra: {
            ...opts.cassandra,
            tls: { ...tlsOf(pki.ordersApi), serverId: `${TRUST}/ns/data/sa/impostor` },
          },
        });
        try {
          await app.ready();
          await new Promise((r) => setTimeout(r, 2_000));
          const res = await app.inject({ method: 'GET', url: '/readyz' });
          expect(res.statusCode).toBe(503);
          expect(res.json()).toMatchObject({ checks: { cassandra: false } });
        } finally {
          await app.close();
        }
      });
    });

    describe('identity at the data layer', () => {
      it("ledger running with orders-api's identity is refused on keyspace ledger and stays unready", async () => {
        const opts = ledgerOptions();
        const wrong = await buildLedger({
          ...opts,
          groupId: 'ledger-wrong-identity',
          cassandra: {
            ...opts.cassandra,
            tls: { ...tlsOf(pki.ordersApi), serverId: CASSANDRA_ID },
          },
        });
        try {
          await wrong.app.ready();
          await new Promise((r) => setTimeout(r, 2_000));
          const res = await wrong.app.inject({ method: 'GET', url: '/readyz' });
          expect(res.statusCode).toBe(503);
          expect(res.json()).toMatchObject({ checks: { cassandra: false } });
        } finally {
          await wrong.app.close();
        }
      });
    });

    describe('ledger replays', () => {
      it('a duplicate record of an event does not add or change an entry', async () => {
        if (!kafka || !ledger) throw new Error('not started');
        const order = await createOrder({ sku: 'DUP-1', quantity: 5 });
        await waitUntil(async () => (await ledger?.store.get(order.id)) ?? null, {
          what: 'first projection',
          timeoutMs: 30_000,
          intervalMs: 100,
        });
        const before = await entryCount();
        const projected = ledger.consumer.projected;
        // The same event again, as a producer retry without idempotence would write it.
        const producer = new kafkajs.Kafka(
          kafkaClientConfig(kafka, creds(pki.tester), 'test-dup'),
        ).producer({
          createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
        });
        await producer.connect();
        const event = encodeOrderCreated({
          type: 'order.created',
          version: 1,
          order,
          subject: 'alice',
          requestId: 'dup',
        });
        await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: [{ key: order.id, value: event }],
        });
        await producer.disconnect();
        await waitUntil(async () => (ledger?.consumer.projected ?? 0) > projected, {
          what: 'duplicate consumed',
          timeoutMs: 30_000,
          intervalMs: 100,
        });
        expect(await entryCount()).toBe(before);
        expect(await ledger.store.get(order.id)).toMatchObject({ quantity: 5, subject: 'alice' });
      });

      it('skips a malformed record and commits one offset past the batch it came in', async () => {
        if (!kafka || !ledger) throw new Error('not started');
        const order: Order = {
          id: randomUUID(),
          sku: 'AFTER-POISON-1',
          quantity: 2,
          subject: 'alice',
          createdAt: new Date().toISOString(),
        };
        const producer = new kafkajs.Kafka(
          kafkaClientConfig(kafka, creds(pki.tester), 'test-poison'),
        ).producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
        await producer.connect();
        // One request, so both records normally reach the consumer in one fetched batch.
        const skipped = ledger.consumer.skipped;
        const [meta] = await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: [
            { key: order.id, value: Buffer.from('{"type":"order.created","version":1,"order":') },
            {
              key: order.id,
              value: encodeOrderCreated({
                type: 'order.created',
                version: 1,
                order,
                subject: 'alice',
                requestId: 'poison',
              }),
            },
          ],
        });
        await producer.disconnect();
        await waitUntil(async () => (await ledger?.store.get(order.id)) ?? null, {
          what: 'the record after the malformed one is projected',
          timeoutMs: 30_000,
          intervalMs: 100,
        });
        expect(ledger.consumer.skipped).toBe(skipped + 1);
        // Same key, same partition: the two records are at baseOffset and baseOffset + 1.
        if (!meta?.baseOffset) throw new Error('no record metadata from the producer');
        const past = String(Number(meta.baseOffset) + 2);
        await waitUntil(
          async () => {
            const [t] = await admin.fetchOffsets({ groupId: 'ledger', topics: [TOPIC] });
            return t?.partitions.find((p) => p.partition === meta.partition)?.offset === past;
          },
          { what: 'offset committed past both records', timeoutMs: 10_000, intervalMs: 100 },
        );
      });

      it('rewinding the consumer group to the start replays everything without double counting', async () => {
        if (!ledger) throw new Error('not started');
        const before = await entryCount();
        const quantities = await cql.execute('SELECT order_id, quantity FROM ledger.order_entries');
        await ledger.app.close();
        ledger = undefined;
        await admin.resetOffsets({ groupId: 'ledger', topic: TOPIC, earliest: true });
        const total = (await admin.fetchTopicOffsets(TOPIC)).reduce(
          (n, p) => n + Number(p.high),
          0,
        );
        ledger = await buildLedger(ledgerOptions());
        await ledger.app.ready();
        // Every record comes back: the events are projected again, the malformed one skipped again.
        const handled = () => (ledger ? ledger.consumer.projected + ledger.consumer.skipped : 0);
        await waitUntil(async () => handled() >= total, {
          what: `all ${total} records replayed`,
          timeoutMs: 60_000,
          intervalMs: 200,
        });
        expect(await entryCount()).toBe(before);
        for (const row of quantities.rows) {
          const e = await ledger.store.get(String(row.get('order_id')));
          expect(e?.quantity).toBe(row.get('quantity'));
        }
      });

      it('commits an offset only after the projection is written', async () => {
        if (!ledger) throw new Error('not started');
        const committed = async (): Promise<number> => {
          const [t] = await admin.fetchOffsets({ groupId: 'ledger', topics: [TOPIC] });
          return (t?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
        };
        const start = await committed();
        // Break the projection's write for real: the upsert names a column that no longer exists.
        await cql.execute('ALTER TABLE ledger.order_entries DROP request_id');
        const order = await createOrder({ sku: 'LATE-1', quantity: 1 });
        await new Promise((r) => setTimeout(r, 3_000));
        expect(await committed()).toBe(start);
        expect(await ledger.store.get(order.id).catch(() => null)).toBeNull();
        await cql.execute('ALTER TABLE ledger.order_entries ADD request_id text');
        await waitUntil(async () => (await ledger?.store.get(order.id)) ?? null, {
          what: 'projection after the table is repaired',
          timeoutMs: 60_000,
          intervalMs: 250,
        });
        await waitUntil(async () => (await committed()) === start + 1, {
          what: 'offset committed after the write',
          timeoutMs: 10_000,
          intervalMs: 100,
        });
      });
    });

    describe('graceful shutdown (real processes, SIGTERM)', () => {
      function startServer(
        service: 'orders-api' | 'ledger',
        port: number,
        logFile: string,
      ): ChildProcess {
        if (!cass || !kafka) throw new Error('not started');
        // Each service with its own workload identity: Cassandra grants are per role.
        const own = service === 'ledger' ? pki.ledger : pki.ordersApi;
        const out = createWriteStream(logFile);
        logs.push(out);
        const child = spawn(process.execPath, [join(SERVICES, service, 'src/server.ts')], {
          env: {
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
            ...(service === 'ledger'
              ? { KAFKA_GROUP_ID: `ledger-drain-${Date.now()}` }
              : // orders-api may only read keyspace orders; the writer applied the table.
                { CASSANDRA_MIGRATE: 'false' }),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        // The file is for the reader of a failed run; the assertions read `outputOf(child)`, which is
        // complete only once the child's pipes have closed ('exit' can come before the last lines).
        const chunks: Buffer[] = [];
        const keep = (d: Buffer): void => {
          chunks.push(d);
          out.write(d);
        };
        child.stdout?.on('data', keep);
        child.stderr?.on('data', keep);
        outputs.set(
          child,
          new Promise((res) => child.once('close', () => res(Buffer.concat(chunks).toString()))),
        );
        children.push(child);
        return child;
      }

      const outputs = new Map<ChildProcess, Promise<string>>();
      /** Everything the child wrote to stdout and stderr, once its pipes have closed. */
      const outputOf = (c: ChildProcess): Promise<string> =>
        outputs.get(c) ?? Promise.reject(new Error('not a started server'));

      const exited = (c: ChildProcess): Promise<number | null> =>
        c.exitCode !== null
          ? Promise.resolve(c.exitCode)
          : new Promise((r) => c.once('exit', (code) => r(code)));

      function call(
        port: number,
        method: string,
        path: string,
        body?: unknown,
      ): Promise<{ status: number; body: string }> {
        return new Promise((res, rej) => {
          const payload = body === undefined ? undefined : JSON.stringify(body);
          const req = request(
            {
              host: '127.0.0.1',
              port,
              method,
              path,
              agent: false,
              headers: { ...identity, ...(payload ? { 'content-type': 'application/json' } : {}) },
            },
            (r) => {
              let data = '';
              r.on('data', (d: Buffer) => (data += d.toString()));
              r.on('end', () => res({ status: r.statusCode ?? 0, body: data }));
            },
          );
          req.on('error', rej);
          req.end(payload);
        });
      }

      it('orders-api finishes in-flight orders, then exits 0', async () => {
        // Whether an order is still inside the server when SIGTERM lands is a race on a loaded 2-core
        // machine (all 29 others may still sit in the accept queue, and those are reset, not drained).
        // Each attempt checks every safety property; the drain itself must be seen within 3 attempts.
        let drainedInFlight = 0;
        for (let attempt = 1; attempt <= 3 && drainedInFlight === 0; attempt++) {
          drainedInFlight = await drainOnce(attempt);
        }
        expect(drainedInFlight).toBeGreaterThan(0);
      });

      /** One SIGTERM under 30 concurrent orders; returns how many orders completed after the signal. */
      async function drainOnce(attempt: number): Promise<number> {
        const port = await freePort();
        const logFile = join(stores().dir, `orders-api-process-${attempt}.log`);
        const child = startServer('orders-api', port, logFile);
        await waitUntil(async () => (await call(port, 'GET', '/readyz')).status === 200, {
          what: 'orders-api process ready',
          timeoutMs: 60_000,
          intervalMs: 200,
        });
        const prefix = `DRAIN${attempt}-`;
        const results = Array.from({ length: 30 }, (_, i) =>
          call(port, 'POST', '/orders', { sku: `${prefix}${i}`, quantity: 1 }).then(
            (r) => ({ ok: true as const, ...r }),
            (e: NodeJS.ErrnoException) => ({ ok: false as const, code: e.code ?? e.message }),
          ),
        );
        // SIGTERM as soon as the first order is done: the others are in flight inside the server.
        await Promise.race(results);
        child.kill('SIGTERM');
        const [outcomes, code] = await Promise.all([Promise.all(results), exited(child)]);
        expect(code).toBe(0);
        const created = outcomes.flatMap((o) => (o.ok && o.status === 202 ? [o] : []));
        // Nothing accepted is dropped: every request either completed, or was refused cleanly after close.
        // A connection still in the kernel's accept queue, or accepted with no request read yet, is reset
        // when the server closes (ECONNRESET); one that arrives after the close is refused (ECONNREFUSED).
        for (const o of outcomes) {
          if (o.ok) expect([202, 503]).toContain(o.status);
          else expect(['ECONNREFUSED', 'ECONNRESET']).toContain(o.code);
        }
        expect(created.length).toBeGreaterThan(0);
        // ... and a refused or reset request left nothing half-applied: once the writer has drained the
        // intake topic, the stored orders of this attempt are exactly the ones answered 202.
        const want = created.map((o) => (JSON.parse(o.body) as Order).sku).sort();
        const storedSkus = async (): Promise<string[]> =>
          (await cql.execute('SELECT sku FROM orders.orders')).rows
            .map((r) => String(r.get('sku')))
            .filter((sku) => sku.startsWith(prefix))
            .sort();
        await waitUntil(async () => (await storedSkus()).length >= want.length, {
          what: `the ${want.length} acknowledged orders of attempt ${attempt} stored by orders-writer`,
          timeoutMs: 30_000,
          intervalMs: 100,
        });
        expect(await storedSkus()).toEqual(want);
        for (const o of created) {
          const id = (JSON.parse(o.body) as Order).id;
          const rs = await cql.execute('SELECT id FROM orders.orders WHERE id = ?', [id], {
            prepare: true,
          });
          expect(rs.rowLength).toBe(1);
        }
        const msgs = (await outputOf(child))
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => (JSON.parse(l) as { msg: string }).msg);
        const signalled = msgs.indexOf('shutting down: draining in-flight work');
        expect(signalled).toBeGreaterThan(-1);
        expect(msgs.at(-1)).toBe('drained; exiting');
        // Work that was in flight when the signal came was finished, not cut off.
        const drained = msgs.slice(signalled).filter((m) => m === 'order accepted').length;
        process.stderr.write(
          `[services] drain attempt ${attempt}: ${created.length} of 30 accepted, ${drained} after the signal, rest refused cleanly\n`,
        );
        return drained;
      }

      it('ledger leaves its group and exits 0', async () => {
        const port = await freePort();
        const logFile = join(stores().dir, 'ledger-process.log');
        const child = startServer('ledger', port, logFile);
        await waitUntil(async () => (await call(port, 'GET', '/readyz')).status === 200, {
          what: 'ledger process ready',
          timeoutMs: 60_000,
          intervalMs: 200,
        });
        const t0 = Date.now();
        child.kill('SIGTERM');
        expect(await exited(child)).toBe(0);
        expect(Date.now() - t0).toBeLessThan(10_000);
        expect(await outputOf(child)).toContain('"msg":"drained; exiting"');
      });
    });
  });
}
