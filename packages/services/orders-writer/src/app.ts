import { ORDERS_INTAKE_TOPIC } from '@trellis/contracts/orders-intake-v1';
import { ORDERS_TOPIC } from '@trellis/contracts/orders-v1';
import {
  CassandraDependency,
  migrate,
  type CassandraOptions,
} from '@trellis/service-platform/cassandra';
import type { QueueSettings } from '@trellis/service-platform/config';
import { Connector, type Dependency } from '@trellis/service-platform/dependency';
import { createHttpApp, type LogOptions } from '@trellis/service-platform/http';
import { createKafka, type KafkaOptions } from '@trellis/service-platform/kafka';
import { Publisher } from '@trellis/service-platform/publisher';
import type { TracingOptions } from '@trellis/service-platform/tracing';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { KafkaIntake } from './intake-kafka.ts';
import { SqsOrderQueue, type OrderQueue } from '@trellis/service-platform/queue';
import { SqsIntake } from './intake-sqs.ts';
import { OrderRows } from './rows.ts';
import { registerWriterMetrics } from './metrics.ts';
import { ddl } from './schema.ts';
import { ChunkWriter } from './writer.ts';

/** Everything orders-writer needs; `server.ts` builds it from the environment. */
export interface OrdersWriterOptions {
  cassandra: CassandraOptions;
  /** The cluster `orders.v1` goes to, and the intake topic's with `queue.kind = 'kafka'`. */
  kafka: KafkaOptions;
  /** The order queue. @default { kind: 'kafka' } */
  queue?: QueueSettings;
  /** Intake topic (kafka queue). @default 'orders.intake.v1' */
  intakeTopic?: string;
  /** Where `order.created` goes. @default 'orders.v1' */
  ordersTopic?: string;
  /** Consumer group on the intake topic. @default 'orders-writer' */
  groupId?: string;
  /** Most records per chunk, 1..1000. @default 100 */
  batchMax?: number;
  /** Longest wait to fill a chunk once records are there, ms. @default 20 */
  batchWaitMs?: number;
  /** Apply the table DDL on connect. Needs CREATE and ALTER on keyspace `orders`. @default true */
  migrate?: boolean;
  /** Logging; `false` for none. @default { level: 'info' } to stdout */
  log?: LogOptions | false;
  /** Another receiving side of the queue (tests); by default an SqsOrderQueue from `queue`'s settings. */
  intakeQueue?: OrderQueue & { close(): void };
  /** SQS credentials (ElasticMQ checks none); omit in AWS to use the default chain. */
  sqsCredentials?: { accessKeyId: string; secretAccessKey: string };
  /** Traces (OTLP/HTTP endpoint and service name); off when absent. @default off */
  tracing?: TracingOptions;
}

/** The writer app plus handles tests use to observe it. */
export interface OrdersWriterApp {
  app: FastifyInstance;
  writer: ChunkWriter;
  rows: OrderRows;
}

const defaults = {
  queue: { kind: 'kafka' } as QueueSettings,
  groupId: 'orders-writer',
  batchMax: 100,
  batchWaitMs: 20,
  /** How long one chunk's events may wait for Kafka's ack before the chunk fails (and comes back). */
  publishTimeoutMs: 30_000,
} as const;

/**
 * orders-writer: drains the order queue (`orders.intake.v1`, or SQS) into `orders.orders` in chunks,
 * emits `orders.v1` `order.created` for the stored orders, then commits (ADR 0022). Serves `/healthz`,
 * `/readyz` and `/metrics` (the writer's counters as Prometheus text; pod-local: the sidecar routes it
 * only on its metrics listener). Consuming starts when the app is ready (listen or inject).
 */
export async function buildWriter(opts: OrdersWriterOptions): Promise<OrdersWriterApp> {
  const batchMax = opts.batchMax ?? defaults.batchMax;
  const batchWaitMs = opts.batchWaitMs ?? defaults.batchWaitMs;
  const queue = opts.queue ?? defaults.queue;
  const app = createHttpApp({
    service: 'orders-writer',
    log: opts.log ?? {},
    // Called only per request, after the values below are initialised.
    readiness: () => connector.status(),
    liveness: () => !(intake instanceof KafkaIntake) || intake.alive(),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  const cassandra = new CassandraDependency(opts.cassandra, app.log, async (client) => {
    if (opts.migrate ?? true) await migrate(client, ddl);
  });
  const kafka = createKafka(opts.kafka, app.log);
  const publisher = new Publisher(
    kafka,
    {
      topic: opts.ordersTopic ?? ORDERS_TOPIC,
      timeoutMs: defaults.publishTimeoutMs,
      tracing: app.tracing,
    },
    app.log,
  );
  const rows = new OrderRows(cassandra.client, app.tracing);
  const writer = new ChunkWriter(rows, publisher, app.log, app.tracing);
  const metrics = new Registry();
  registerWriterMetrics(metrics, writer.stats);
  app.get('/metrics', { logLevel: 'warn', config: { trace: false } }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );
  const ready = (): boolean => cassandra.ready() && publisher.ready();
  let intake: Dependency;
  if (queue.kind === 'kafka') {
    intake = new KafkaIntake(
      kafka,
      writer,
      {
        topic: opts.intakeTopic ?? ORDERS_INTAKE_TOPIC,
        groupId: opts.groupId ?? defaults.groupId,
        batchMax,
        batchWaitMs,
        ready,
      },
      app.log,
    );
  } else {
    const receiver =
      opts.intakeQueue ??
      new SqsOrderQueue({
        queueUrl: queue.queueUrl,
        region: queue.region,
        ...(queue.endpoint !== undefined ? { endpoint: queue.endpoint } : {}),
        ...(opts.sqsCredentials ? { credentials: opts.sqsCredentials } : {}),
      });
    const destination = new URL(queue.queueUrl).pathname.split('/').at(-1) ?? '';
    intake = new SqsIntake(
      receiver,
      writer,
      { batchMax, batchWaitMs, ready, destination },
      app.log,
    );
  }
  // Closed last first: the intake finishes its chunk before the producer and the store go.
  const connector = new Connector([cassandra, publisher, intake], app.log);
  app.addHook('onReady', async () => connector.start());
  app.addHook('onClose', async () => {
    await connector.close();
    await app.tracing.shutdown();
  });
  return { app, writer, rows };
}

/** The app alone, per the service convention (`buildApp(opts)`). */
export async function buildApp(opts: OrdersWriterOptions): Promise<FastifyInstance> {
  return (await buildWriter(opts)).app;
}
