import { ORDERS_TOPIC } from '@trellis/contracts/orders-v1';
import {
  CassandraDependency,
  migrate,
  type CassandraOptions,
} from '@trellis/service-platform/cassandra';
import { Connector } from '@trellis/service-platform/dependency';
import { authenticate, createHttpApp, type LogOptions } from '@trellis/service-platform/http';
import { identityDefaults, type IdentityOptions } from '@trellis/service-platform/identity';
import { createKafka, type KafkaOptions } from '@trellis/service-platform/kafka';
import type { TracingOptions } from '@trellis/service-platform/tracing';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { FromSchema } from 'json-schema-to-ts';
import { OrderConsumer } from './consumer.ts';
import { EntryStore } from './entries.ts';
import { registerConsumerMetrics } from './metrics.ts';
import { ddl } from './schema.ts';

/** Everything ledger needs; `server.ts` builds it from the environment. */
export interface LedgerOptions {
  cassandra: CassandraOptions;
  kafka: KafkaOptions;
  /** Topic to consume. @default 'orders.v1' */
  topic?: string;
  /** Consumer group. @default 'ledger' */
  groupId?: string;
  /** Identity header names for the read endpoint. @default identityDefaults */
  identity?: Partial<IdentityOptions>;
  /** Apply the table DDL on connect. Needs CREATE on keyspace `ledger`. @default true */
  migrate?: boolean;
  /** Logging; `false` for none. @default { level: 'info' } to stdout */
  log?: LogOptions | false;
  /** Traces (OTLP/HTTP endpoint and service name); off when absent. @default off */
  tracing?: TracingOptions;
}

const entryParams = {
  type: 'object',
  additionalProperties: false,
  required: ['orderId'],
  properties: {
    orderId: {
      type: 'string',
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    },
  },
} as const;
type EntryParams = FromSchema<typeof entryParams>;

/** The ledger app plus handles tests use to observe it. */
export interface LedgerApp {
  app: FastifyInstance;
  consumer: OrderConsumer;
  store: EntryStore;
}

/**
 * ledger: consumes `orders.v1` (group `ledger`) into `ledger.order_entries`, and serves `/healthz`,
 * `/readyz`, `GET /entries/:orderId` and `/metrics` (the consumer's counters as Prometheus text;
 * pod-local: the sidecar routes it only on its metrics listener). Consuming starts when the app is
 * ready (listen or inject).
 */
export async function buildLedger(opts: LedgerOptions): Promise<LedgerApp> {
  const identity: IdentityOptions = { ...identityDefaults, ...opts.identity };
  const app = createHttpApp({
    service: 'ledger',
    log: opts.log ?? {},
    // Called only per request, after the values below are initialised.
    readiness: () => connector.status(),
    liveness: () => consumer.alive(),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  const cassandra = new CassandraDependency(opts.cassandra, app.log, async (client) => {
    if (opts.migrate ?? true) await migrate(client, ddl);
  });
  const store = new EntryStore(cassandra.client);
  const consumer = new OrderConsumer(
    createKafka(opts.kafka, app.log),
    store,
    {
      topic: opts.topic ?? ORDERS_TOPIC,
      groupId: opts.groupId ?? 'ledger',
      storeReady: () => cassandra.ready(),
      tracing: app.tracing,
    },
    app.log,
  );
  const connector = new Connector([cassandra, consumer], app.log);
  const metrics = new Registry();
  registerConsumerMetrics(metrics, consumer);
  app.get('/metrics', { logLevel: 'warn', config: { trace: false } }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );
  app.addHook('onReady', async () => connector.start());
  app.addHook('onClose', async () => {
    await connector.close();
    await app.tracing.shutdown();
  });

  await app.register(async (entries) => {
    entries.addHook('onRequest', authenticate(identity));
    entries.get<{ Params: EntryParams }>(
      '/entries/:orderId',
      { schema: { params: entryParams } },
      async (req, reply) => {
        if (!cassandra.ready()) {
          return reply.code(503).send({
            error: 'unavailable',
            message: 'cassandra is not connected',
            requestId: req.id,
          });
        }
        const entry = await store.get(req.params.orderId.toLowerCase());
        if (!entry) {
          return reply.code(404).send({
            error: 'not_found',
            message: `no entry for order ${req.params.orderId}`,
            requestId: req.id,
          });
        }
        return reply.send(entry);
      },
    );
  });
  return { app, consumer, store };
}

/** The app alone, per the service convention (`buildApp(opts)`). */
export async function buildApp(opts: LedgerOptions): Promise<FastifyInstance> {
  return (await buildLedger(opts)).app;
}
