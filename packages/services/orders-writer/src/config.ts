import { ORDERS_INTAKE_TOPIC } from '@trellis/contracts/orders-intake-v1';
import { ORDERS_TOPIC } from '@trellis/contracts/orders-v1';
import {
  cassandraFromEnv,
  consumerGroupFromEnv,
  kafkaFromEnv,
  migrateFromEnv,
  queueFromEnv,
  serverFromEnv,
  tracingFromEnv,
  type ServerSettings,
} from '@trellis/service-platform/config';
import { Env } from '@trellis/service-platform/env';
import type { OrdersWriterOptions } from './app.ts';
import type { OrdersWriterEnv } from './env.ts';

/** orders-writer's defaults, in one place. */
export const defaults = {
  port: 8082,
  groupId: 'orders-writer',
  batchMax: 100,
  batchWaitMs: 20,
} as const;

/** orders-writer's settings from the environment; throws a ConfigError naming the bad variable. */
export function loadConfig(vars: Readonly<Record<string, string | undefined>>): {
  server: ServerSettings;
  app: OrdersWriterOptions;
} {
  const env = new Env<OrdersWriterEnv>(vars);
  const server = serverFromEnv(env, defaults.port);
  const tracing = tracingFromEnv(env, 'orders-writer');
  const groupId = consumerGroupFromEnv(env, defaults.groupId);
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
      ...(tracing ? { tracing } : {}),
    },
  };
}
