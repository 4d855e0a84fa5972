import { ORDERS_INTAKE_TOPIC } from '@trellis/contracts/orders-intake-v1';
import { ORDERS_TOPIC } from '@trellis/contracts/orders-v1';
import {
  cassandraFromEnv,
  kafkaFromEnv,
  migrateFromEnv,
  serverFromEnv,
  type ServerSettings,
} from '@trellis/service-platform/config';
import { ConfigError, Env } from '@trellis/service-platform/env';
import { queueEnvSchema } from '@trellis/service-platform/env-schema';
import type { OrdersWriterOptions, QueueSettings } from './app.ts';
import type { OrdersWriterEnv } from './env.ts';

/** orders-writer's defaults, in one place. */
export const defaults = {
  port: 8082,
  groupId: 'orders-writer',
  batchMax: 100,
  batchWaitMs: 20,
} as const;

const KAFKA_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** orders-writer's settings from the environment; throws a ConfigError naming the bad variable. */
export function loadConfig(vars: Readonly<Record<string, string | undefined>>): {
  server: ServerSettings;
  app: OrdersWriterOptions;
} {
  const env = new Env<OrdersWriterEnv>(vars);
  const server = serverFromEnv(env, defaults.port);
  const groupId = env.string('KAFKA_GROUP_ID', defaults.groupId);
  if (!KAFKA_NAME.test(groupId)) {
    throw new ConfigError(
      'KAFKA_GROUP_ID',
      `must be letters, digits, ".", "_" or "-", got "${groupId}"`,
    );
  }
  return {
    server,
    app: {
      cassandra: cassandraFromEnv(env),
      kafka: kafkaFromEnv(env, 'orders-writer'),
      intakeTopic: env.string('INTAKE_TOPIC', ORDERS_INTAKE_TOPIC),
      ordersTopic: env.string('ORDERS_TOPIC', ORDERS_TOPIC),
      groupId,
      batchMax: env.int('WRITER_BATCH_MAX', defaults.batchMax, 1, 1_000),
      batchWaitMs: env.int('WRITER_BATCH_WAIT_MS', defaults.batchWaitMs, 0, 5_000),
      queue: queueFromEnv(env),
      migrate: migrateFromEnv(env),
      log: { level: server.logLevel },
    },
  };
}

/**
 * `ORDERS_QUEUE` (kafka|sqs) and, for sqs, `SQS_QUEUE_URL`, `SQS_REGION`, `SQS_ENDPOINT`. Read here
 * until the platform's `queueFromEnv` (config.ts of @trellis/service-platform) lands; same names.
 */
export function queueFromEnv(env: Env<OrdersWriterEnv>): QueueSettings {
  const kind = env.oneOf('ORDERS_QUEUE', queueEnvSchema.properties.ORDERS_QUEUE.enum, 'kafka');
  const queueUrl = env.optional('SQS_QUEUE_URL');
  const region = env.optional('SQS_REGION');
  const endpoint = env.optional('SQS_ENDPOINT');
  if (kind === 'kafka') {
    for (const [name, v] of [
      ['SQS_QUEUE_URL', queueUrl],
      ['SQS_REGION', region],
      ['SQS_ENDPOINT', endpoint],
    ] as const) {
      if (v !== undefined) throw new ConfigError(name, 'is set but ORDERS_QUEUE is not sqs');
    }
    return { kind };
  }
  if (queueUrl === undefined)
    throw new ConfigError('SQS_QUEUE_URL', 'is required when ORDERS_QUEUE=sqs');
  if (!/^https?:\/\/[^/]+\/[^/]+\/[A-Za-z0-9_-]{1,75}\.fifo$/.test(queueUrl))
    throw new ConfigError(
      'SQS_QUEUE_URL',
      `must be http(s)://<host>/<account>/<name>.fifo (a FIFO queue), got "${queueUrl}"`,
    );
  if (region === undefined)
    throw new ConfigError('SQS_REGION', 'is required when ORDERS_QUEUE=sqs');
  if (!/^[a-z0-9-]+$/.test(region))
    throw new ConfigError('SQS_REGION', `must be a region name, got "${region}"`);
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(endpoint))
    throw new ConfigError('SQS_ENDPOINT', `must be an http(s) URL, got "${endpoint}"`);
  return { kind, queueUrl, region, ...(endpoint !== undefined ? { endpoint } : {}) };
}
