import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { requestIdHeader } from '@trellis/contracts';
import {
  ORDERS_TOPIC,
  encodeOrderCreated,
  type Order,
  type OrderCreated,
} from '@trellis/contracts/orders-v1';
import { Registry } from 'prom-client';
import { OrderCache } from './cache.ts';
import {
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKeyError,
  fingerprint,
  orderIdFor,
  parseIdempotencyKey,
} from './idempotency.ts';
import { OrderStore, storeUnavailable } from './orders.ts';
import { CassandraDependency, type CassandraOptions } from '@trellis/service-platform/cassandra';
import { Connector } from '@trellis/service-platform/dependency';
import { authenticate, createHttpApp, type LogOptions } from '@trellis/service-platform/http';
import {
  identityDefaults,
  type Caller,
  type IdentityOptions,
} from '@trellis/service-platform/identity';
import { createKafka, type KafkaOptions } from '@trellis/service-platform/kafka';
import { PublishError, Publisher } from '@trellis/service-platform/publisher';
import { ddl, migrate } from './schema.ts';

/** Everything orders-api needs; `server.ts` builds it from the environment. */
export interface OrdersApiOptions {
  cassandra: CassandraOptions;
  kafka: KafkaOptions;
  /** Identity header names and policy. @default identityDefaults */
  identity?: Partial<IdentityOptions>;
  /** Topic to publish to. @default 'orders.v1' */
  topic?: string;
  /** Apply the table DDL on connect. Needs CREATE on keyspace `orders`. @default true */
  migrate?: boolean;
  /** How long POST waits for Kafka's ack before answering 503. @default 5000 */
  publishTimeoutMs?: number;
  /**
   * Orders the `GET /orders/:id` cache holds (LRU); 0 turns it off.
   * @default 10000
   */
  orderCacheEntries?: number;
  /** Logging; `false` for none. @default { level: 'info' } to stdout */
  log?: LogOptions | false;
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

/**
 * orders-api: `POST /orders` stores an order in Cassandra and publishes `order.created` to
 * `orders.v1` with the caller's subject; with an `Idempotency-Key` every retry yields the same
 * order (ADR 0017). `GET /orders/:id` reads it back, through a bounded cache. `/metrics` exports the
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
  });

  const cassandra = new CassandraDependency(opts.cassandra, app.log, async (client) => {
    if (opts.migrate ?? true) await migrate(client, ddl);
  });
  const publishTimeoutMs = opts.publishTimeoutMs ?? 5_000;
  const publisher = new Publisher(
    createKafka(opts.kafka, app.log),
    { topic: opts.topic ?? ORDERS_TOPIC, timeoutMs: publishTimeoutMs },
    app.log,
  );
  const connector = new Connector([cassandra, publisher], app.log);
  const store = new OrderStore(cassandra.client);
  const metrics = new Registry();
  const cache = new OrderCache(opts.orderCacheEntries ?? 10_000, metrics);
  // How long a create holds its key: the publish wait plus a second. A retry within it gets 409; after
  // it, the request that created the order is over (answered, or crashed) and the retry finishes it.
  const leaseMs = publishTimeoutMs + 1_000;
  // Keys being created by this process: a concurrent retry gets 409 without a Paxos round.
  const creating = new Set<string>();
  app.addHook('onReady', async () => connector.start());
  app.addHook('onClose', async () => connector.close());

  app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );

  await app.register(async (orders) => {
    orders.addHook('onRequest', authenticate(identity));

    /** Publish the order's event and answer 201 with it, or 503 (with its id) without the ack. */
    async function publishAndAnswer(
      req: FastifyRequest,
      reply: FastifyReply,
      caller: Caller,
      order: Order,
      how: { keyed: boolean; replayed: boolean },
    ): Promise<FastifyReply> {
      const event: OrderCreated = {
        type: 'order.created',
        version: 1,
        order,
        subject: caller.subject,
        requestId: req.id,
        ...(caller.clientId !== undefined ? { clientId: caller.clientId } : {}),
        ...(caller.peer !== undefined ? { peer: caller.peer } : {}),
      };
      try {
        await publisher.publish({
          key: order.id,
          value: encodeOrderCreated(event),
          headers: { [requestIdHeader]: req.id },
        });
      } catch (err) {
        if (!(err instanceof PublishError)) throw err;
        // The order is stored; its event may still go out (the producer keeps retrying), and a retry
        // with the same key after the lease produces it again: the ledger projects by order id.
        req.log.error(
          { err, orderId: order.id },
          'order stored but its event was not acknowledged',
        );
        return unavailable(reply, req.id, 'order event could not be published', order.id);
      }
      if (how.keyed) {
        // Best effort: without the mark, a later retry produces the event once more, which is harmless.
        await store.markPublished(order.id, Date.now()).catch((err: unknown) => {
          req.log.warn({ err, orderId: order.id }, 'could not record the published event');
        });
      }
      req.log.info({ orderId: order.id, replayed: how.replayed }, 'order created');
      return created(reply, order, how.replayed);
    }

    orders.post<{ Body: CreateOrderBody }>(
      '/orders',
      { schema: { body: createOrderBody, response: { 201: orderResponse } } },
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
        if (!cassandra.ready()) return unavailable(reply, req.id, 'cassandra is not connected');
        if (!publisher.ready()) return unavailable(reply, req.id, 'kafka is not connected');
        const now = Date.now();
        const order: Order = {
          id: key === null ? randomUUID() : orderIdFor(caller.subject, key),
          sku: req.body.sku,
          quantity: req.body.quantity,
          ...(req.body.customerRef !== undefined ? { customerRef: req.body.customerRef } : {}),
          subject: caller.subject,
          createdAt: new Date(now).toISOString(),
        };
        if (key === null) {
          // No key, no retry safety: a plain write with a random id, as before keys existed.
          await store.insert(order);
          return publishAndAnswer(req, reply, caller, order, { keyed: false, replayed: false });
        }
        if (creating.has(order.id)) return conflict(reply, req.id, leaseMs);
        creating.add(order.id);
        try {
          const hash = fingerprint(req.body);
          let result;
          try {
            result = await store.create(order, hash, now + leaseMs);
          } catch (err) {
            // A timed-out Paxos round may or may not have applied: the retry (same key) finds out.
            if (!storeUnavailable(err)) throw err;
            req.log.warn({ err, orderId: order.id }, 'idempotent create did not complete');
            return unavailable(
              reply,
              req.id,
              'the order store did not answer; retry with the same key',
            );
          }
          if (result.created) {
            return await publishAndAnswer(req, reply, caller, order, {
              keyed: true,
              replayed: false,
            });
          }
          const existing = result.existing;
          if (existing.requestHash !== hash || existing.order.subject !== caller.subject) {
            return reply.code(422).send({
              error: 'idempotency_key_reused',
              field: `headers.${IDEMPOTENCY_KEY_HEADER}`,
              message: `${IDEMPOTENCY_KEY_HEADER}: already used for a different order; use a new key for a new order`,
              requestId: req.id,
            });
          }
          if (existing.publishedAt !== null) return created(reply, existing.order, true);
          const left = (existing.leaseUntil ?? 0) - Date.now();
          if (left > 0) return conflict(reply, req.id, left);
          // The request that created it is over without the event's ack (it crashed, or answered
          // 503): finish its work. Two such retries at once both produce; the ledger dedups by id.
          req.log.warn(
            { orderId: order.id },
            'completing an order whose event was not acknowledged',
          );
          return await publishAndAnswer(req, reply, caller, existing.order, {
            keyed: true,
            replayed: true,
          });
        } finally {
          creating.delete(order.id);
        }
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
        const order = await store.get(id);
        if (!order) {
          return reply
            .code(404)
            .send({ error: 'not_found', message: `no order ${req.params.id}`, requestId: req.id });
        }
        cache.set(order);
        return reply.send(order);
      },
    );
  });
  return app;
}

function created(reply: FastifyReply, order: Order, replayed: boolean): FastifyReply {
  if (replayed) void reply.header('idempotent-replayed', 'true');
  return reply.code(201).header('location', `/orders/${order.id}`).send(order);
}

/** 409: a request with this key is still being processed; retry after it (RFC 9110 Retry-After). */
function conflict(reply: FastifyReply, requestId: string, waitMs: number): FastifyReply {
  return reply
    .code(409)
    .header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))))
    .send({
      error: 'idempotency_key_in_use',
      message: `a request with this ${IDEMPOTENCY_KEY_HEADER} is still being processed; retry later`,
      requestId,
    });
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
