import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { ORDERS_INTAKE_TOPIC, type OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import type { Order } from '@trellis/contracts/orders-v1';
import { Registry } from 'prom-client';
import { OrderCache } from './cache.ts';
import {
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKeyError,
  fingerprint,
  orderIdFor,
  parseIdempotencyKey,
  sameFingerprint,
} from './idempotency.ts';
import { OrderStore, storeUnavailable, type StoredOrder } from './orders.ts';
import {
  CassandraDependency,
  migrate,
  type CassandraOptions,
} from '@trellis/service-platform/cassandra';
import type { QueueSettings } from '@trellis/service-platform/config';
import { Connector } from '@trellis/service-platform/dependency';
import {
  authenticate,
  createHttpApp,
  traceContext,
  type LogOptions,
} from '@trellis/service-platform/http';
import { identityDefaults, type IdentityOptions } from '@trellis/service-platform/identity';
import { createKafka, type KafkaOptions } from '@trellis/service-platform/kafka';
import { PublishError, Publisher } from '@trellis/service-platform/publisher';
import {
  KafkaOrderPublisher,
  SqsOrderPublisher,
  SqsOrderQueue,
  type OrderPublisher,
} from '@trellis/service-platform/queue';
import {
  cassandraSpan,
  type Tracing,
  type TracingOptions,
} from '@trellis/service-platform/tracing';
import { ddl } from './schema.ts';

/** Everything orders-api needs; `server.ts` builds it from the environment. */
export interface OrdersApiOptions {
  cassandra: CassandraOptions;
  /** Kafka; used only when the order queue is Kafka. */
  kafka: KafkaOptions;
  /** The order queue: the Kafka intake topic or an SQS FIFO queue (ADR 0022). @default { kind: 'kafka' } */
  queue?: QueueSettings;
  /**
   * Static credentials for an SQS-compatible server that checks none (ElasticMQ in tests); omit in AWS
   * to use the SDK's default chain (the pod's role).
   */
  sqsCredentials?: { accessKeyId: string; secretAccessKey: string };
  /** Identity header names and policy. @default identityDefaults */
  identity?: Partial<IdentityOptions>;
  /** Kafka topic of the order queue. @default 'orders.intake.v1' */
  intakeTopic?: string;
  /** Apply the table DDL on connect. Needs CREATE and ALTER on keyspace `orders`. @default true */
  migrate?: boolean;
  /** How long POST waits for the queue's ack before answering 503. @default 5000 */
  publishTimeoutMs?: number;
  /**
   * Orders the `GET /orders/:id` cache holds (LRU); 0 turns it off.
   * @default 10000
   */
  orderCacheEntries?: number;
  /** Logging; `false` for none. @default { level: 'info' } to stdout */
  log?: LogOptions | false;
  /** Traces (OTLP/HTTP endpoint and service name); off when absent. @default off */
  tracing?: TracingOptions;
}

/** The body of `POST /orders`, written once: Fastify validates with it and the type derives from it. */
export const createOrderBody = {
  type: 'object',
  additionalProperties: false,
  required: ['sku', 'quantity'],
  properties: {
    sku: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    quantity: { type: 'integer', minimum: 1, maximum: 1000 },
    customerRef: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;
type CreateOrderBody = FromSchema<typeof createOrderBody>;

const orderParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    },
  },
} as const;
type OrderParams = FromSchema<typeof orderParams>;

/** Response shape; also makes Fastify serialise only these fields. */
const orderResponse = {
  type: 'object',
  required: ['id', 'sku', 'quantity', 'subject', 'createdAt'],
  properties: {
    id: { type: 'string' },
    sku: { type: 'string' },
    quantity: { type: 'integer' },
    customerRef: { type: 'string' },
    subject: { type: 'string' },
    createdAt: { type: 'string' },
  },
} as const;

/** The order queue's publisher for `opts` (Kafka intake topic, or SQS FIFO queue). */
function orderPublisher(
  opts: OrdersApiOptions,
  timeoutMs: number,
  log: FastifyInstance['log'],
  tracing: Tracing,
): OrderPublisher {
  const queue = opts.queue ?? { kind: 'kafka' };
  if (queue.kind === 'sqs') {
    return new SqsOrderPublisher(
      new SqsOrderQueue({
        queueUrl: queue.queueUrl,
        region: queue.region,
        ...(queue.endpoint !== undefined ? { endpoint: queue.endpoint } : {}),
        ...(opts.sqsCredentials ? { credentials: opts.sqsCredentials } : {}),
        timeoutMs,
      }),
      tracing,
    );
  }
  return new KafkaOrderPublisher(
    new Publisher(
      createKafka(opts.kafka, log),
      { topic: opts.intakeTopic ?? ORDERS_INTAKE_TOPIC, timeoutMs, tracing },
      log,
    ),
  );
}

/**
 * orders-api (ADR 0022): `POST /orders` validates the order and puts it on the order queue as one
 * `order.accepted` record (Kafka intake topic or SQS FIFO queue), answering 202 once the queue has it;
 * orders-writer stores it in Cassandra later. With an `Idempotency-Key` the id is fixed by (subject,
 * key), and an order already stored is answered from its row (replay, or 422 for another body), so a
 * retry never makes a second order. orders-api writes nothing to Cassandra. `GET /orders/:id` reads an
 * order back (404 until it is written), through a bounded cache of found orders. `/metrics` exports the
 * cache's counters (Prometheus text; pod-local: the sidecar routes only the model's routes). Connects
 * to its data stores in the background once the app is ready; `/readyz` says when they are usable.
 */
export async function buildApp(opts: OrdersApiOptions): Promise<FastifyInstance> {
  const identity: IdentityOptions = { ...identityDefaults, ...opts.identity };
  const app = createHttpApp({
    service: 'orders-api',
    log: opts.log ?? {},
    // Called only per request, after `connector` below is initialised.
    readiness: () => connector.status(),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });

  const cassandra = new CassandraDependency(opts.cassandra, app.log, async (client) => {
    if (opts.migrate ?? true) await migrate(client, ddl);
  });
  const queue = orderPublisher(opts, opts.publishTimeoutMs ?? 5_000, app.log, app.tracing);
  const connector = new Connector([cassandra, queue], app.log);
  const store = new OrderStore(cassandra.client);
  const selectSpan = cassandraSpan('SELECT', 'orders', 'orders');
  const readStored = (req: FastifyRequest, id: string): Promise<StoredOrder | null> =>
    app.tracing.inSpan(selectSpan.name, selectSpan.options, traceContext(req), () =>
      store.getStored(id),
    );
  const metrics = new Registry();
  const cache = new OrderCache(opts.orderCacheEntries ?? 10_000, metrics);
  app.addHook('onReady', async () => connector.start());
  app.addHook('onClose', async () => {
    await connector.close();
    await app.tracing.shutdown();
  });

  app.get('/metrics', { logLevel: 'warn', config: { trace: false } }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );

  await app.register(async (orders) => {
    orders.addHook('onRequest', authenticate(identity));

    orders.post<{ Body: CreateOrderBody }>(
      '/orders',
      { schema: { body: createOrderBody, response: { 202: orderResponse } } },
      async (req, reply) => {
        const caller = req.caller;
        if (!caller) throw new Error('authenticate hook did not run');
        let key: string | null;
        try {
          key = parseIdempotencyKey(req.headers[IDEMPOTENCY_KEY_HEADER]);
        } catch (err) {
          if (!(err instanceof IdempotencyKeyError)) throw err;
          return reply.code(400).send({
            error: 'bad_request',
            field: `headers.${IDEMPOTENCY_KEY_HEADER}`,
            message: err.message,
            requestId: req.id,
          });
        }
        const order: Order = {
          id: key === null ? randomUUID() : orderIdFor(caller.subject, key),
          sku: req.body.sku,
          quantity: req.body.quantity,
          ...(req.body.customerRef !== undefined ? { customerRef: req.body.customerRef } : {}),
          subject: caller.subject,
          createdAt: new Date().toISOString(),
        };
        const requestHash = key === null ? null : fingerprint(req.body);
        if (requestHash !== null) {
          // Keyed: an order the writer already stored answers from its row; nothing is published.
          if (!cassandra.ready()) {
            return unavailable(
              reply,
              req.id,
              'cassandra is not connected; retry with the same key',
            );
          }
          let stored: StoredOrder | null;
          try {
            stored = await readStored(req, order.id);
          } catch (err) {
            if (!storeUnavailable(err)) throw err;
            req.log.warn({ err, orderId: order.id }, 'could not read the order to check its key');
            return unavailable(
              reply,
              req.id,
              'the order store did not answer; retry with the same key',
            );
          }
          if (stored) {
            if (
              !sameFingerprint(stored.requestHash, req.body) ||
              stored.order.subject !== caller.subject
            ) {
              return reply.code(422).send({
                error: 'idempotency_key_reused',
                field: `headers.${IDEMPOTENCY_KEY_HEADER}`,
                message: `${IDEMPOTENCY_KEY_HEADER}: already used for a different order; use a new key for a new order`,
                requestId: req.id,
              });
            }
            return accepted(reply, stored.order, true);
          }
          // Absent: not accepted before, or accepted and not written yet. Either way publish (again):
          // the same id is the same Kafka key / SQS deduplication id, and the writer stores it once.
        }
        if (!queue.ready()) return unavailable(reply, req.id, `${queue.name} is not connected`);
        const record: OrderAccepted = {
          type: 'order.accepted',
          version: 1,
          order,
          requestHash,
          subject: caller.subject,
          requestId: req.id,
          ...(caller.clientId !== undefined ? { clientId: caller.clientId } : {}),
          ...(caller.peer !== undefined ? { peer: caller.peer } : {}),
        };
        try {
          await queue.publish(record, traceContext(req));
        } catch (err) {
          if (!(err instanceof PublishError)) throw err;
          req.log.error({ err, orderId: order.id }, 'order not acknowledged by the order queue');
          return unavailable(
            reply,
            req.id,
            key === null
              ? `the order queue (${queue.name}) did not acknowledge the order; it may still be accepted under orderId (GET it later), a retry is a new order`
              : `the order queue (${queue.name}) did not acknowledge the order; retry with the same ${IDEMPOTENCY_KEY_HEADER}`,
            order.id,
          );
        }
        req.log.info({ orderId: order.id, keyed: key !== null }, 'order accepted');
        return accepted(reply, order, false);
      },
    );

    orders.get<{ Params: OrderParams }>(
      '/orders/:id',
      { schema: { params: orderParams, response: { 200: orderResponse } } },
      async (req, reply) => {
        // Behind the same authentication (and the sidecar's scope check) as a read from the store:
        // the cache changes where an order comes from, never who may read it.
        const id = req.params.id.toLowerCase();
        const hit = cache.get(id);
        if (hit) return reply.send(hit);
        if (!cassandra.ready()) return unavailable(reply, req.id, 'cassandra is not connected');
        const order = (await readStored(req, id))?.order ?? null;
        if (!order) {
          // Not cached: an accepted order is a 404 until the writer stores it, then a 200.
          return reply.code(404).send({
            error: 'order_not_found',
            message: `no order ${req.params.id} (an accepted order appears once it is written)`,
            requestId: req.id,
          });
        }
        cache.set(order);
        return reply.send(order);
      },
    );
  });
  return app;
}

/** 202: the order is on the queue (or, replayed, already stored); it is at `Location` once written. */
function accepted(reply: FastifyReply, order: Order, replayed: boolean): FastifyReply {
  if (replayed) void reply.header('idempotent-replayed', 'true');
  return reply.code(202).header('location', `/orders/${order.id}`).send(order);
}

function unavailable(
  reply: FastifyReply,
  requestId: string,
  message: string,
  orderId?: string,
): FastifyReply {
  return reply
    .code(503)
    .header('retry-after', '1')
    .send({ error: 'unavailable', message, requestId, ...(orderId ? { orderId } : {}) });
}
