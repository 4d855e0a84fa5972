import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { requestIdHeader } from '@trellis/contracts';
import {
  ORDERS_TOPIC,
  encodeOrderCreated,
  type Order,
  type OrderCreated,
} from '@trellis/contracts/orders-v1';
import { OrderStore } from './orders.ts';
import { CassandraDependency, type CassandraOptions } from '@trellis/service-platform/cassandra';
import { Connector } from '@trellis/service-platform/dependency';
import { authenticate, createHttpApp, type LogOptions } from '@trellis/service-platform/http';
import { identityDefaults, type IdentityOptions } from '@trellis/service-platform/identity';
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
 * `orders.v1` with the caller's subject; `GET /orders/:id` reads it back. Connects to its data
 * stores in the background once the app is ready; `/readyz` says when they are usable.
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
  const publisher = new Publisher(
    createKafka(opts.kafka, app.log),
    { topic: opts.topic ?? ORDERS_TOPIC, timeoutMs: opts.publishTimeoutMs ?? 5_000 },
    app.log,
  );
  const connector = new Connector([cassandra, publisher], app.log);
  const store = new OrderStore(cassandra.client);
  app.addHook('onReady', async () => connector.start());
  app.addHook('onClose', async () => connector.close());

  await app.register(async (orders) => {
    orders.addHook('onRequest', authenticate(identity));

    orders.post<{ Body: CreateOrderBody }>(
      '/orders',
      { schema: { body: createOrderBody, response: { 201: orderResponse } } },
      async (req, reply) => {
        const caller = req.caller;
        if (!caller) throw new Error('authenticate hook did not run');
        if (!cassandra.ready()) return unavailable(reply, req.id, 'cassandra is not connected');
        if (!publisher.ready()) return unavailable(reply, req.id, 'kafka is not connected');
        const order: Order = {
          id: randomUUID(),
          sku: req.body.sku,
          quantity: req.body.quantity,
          ...(req.body.customerRef !== undefined ? { customerRef: req.body.customerRef } : {}),
          subject: caller.subject,
          createdAt: new Date().toISOString(),
        };
        await store.insert(order);
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
          // The order is stored; its event may still go out (the producer keeps retrying). An
          // outbox would close this gap; for the smoke service, say so and log the id.
          req.log.error(
            { err, orderId: order.id },
            'order stored but its event was not acknowledged',
          );
          return unavailable(reply, req.id, 'order event could not be published', order.id);
        }
        req.log.info({ orderId: order.id }, 'order created');
        return reply.code(201).header('location', `/orders/${order.id}`).send(order);
      },
    );

    orders.get<{ Params: OrderParams }>(
      '/orders/:id',
      { schema: { params: orderParams, response: { 200: orderResponse } } },
      async (req, reply) => {
        if (!cassandra.ready()) return unavailable(reply, req.id, 'cassandra is not connected');
        const order = await store.get(req.params.id.toLowerCase());
        if (!order) {
          return reply
            .code(404)
            .send({ error: 'not_found', message: `no order ${req.params.id}`, requestId: req.id });
        }
        return reply.send(order);
      },
    );
  });
  return app;
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
