import type { OrdersApiOptions } from './app.ts';
import { ORDERS_INTAKE_TOPIC } from '@trellis/contracts/orders-intake-v1';
import {
  cassandraFromEnv,
  identityFromEnv,
  kafkaFromEnv,
  migrateFromEnv,
  queueFromEnv,
  serverFromEnv,
  tracingFromEnv,
  type ServerSettings,
} from '@trellis/service-platform/config';
import { Env } from '@trellis/service-platform/env';
import type { OrdersApiEnv } from './env.ts';

/** orders-api's settings from the environment; throws a ConfigError naming the bad variable. */
export function loadConfig(vars: Readonly<Record<string, string | undefined>>): {
  server: ServerSettings;
  app: OrdersApiOptions;
} {
  const env = new Env<OrdersApiEnv>(vars);
  const server = serverFromEnv(env, 8080);
  const tracing = tracingFromEnv(env, 'orders-api');
  return {
    server,
    app: {
      cassandra: cassandraFromEnv(env),
      kafka: kafkaFromEnv(env, 'orders-api'),
      identity: identityFromEnv(env),
      queue: queueFromEnv(env),
      intakeTopic: env.string('INTAKE_TOPIC', ORDERS_INTAKE_TOPIC),
      migrate: migrateFromEnv(env),
      publishTimeoutMs: env.int('PUBLISH_TIMEOUT_MS', 5_000, 100, 60_000),
      orderCacheEntries: env.int('ORDER_CACHE_ENTRIES', 10_000, 0, 1_000_000),
      log: { level: server.logLevel },
      ...(tracing ? { tracing } : {}),
    },
  };
}
