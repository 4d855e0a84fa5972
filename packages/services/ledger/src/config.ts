import { ORDERS_TOPIC } from '@trellis/contracts/orders-v1';
import {
  cassandraFromEnv,
  consumerGroupFromEnv,
  identityFromEnv,
  kafkaFromEnv,
  migrateFromEnv,
  serverFromEnv,
  tracingFromEnv,
  type ServerSettings,
} from '@trellis/service-platform/config';
import { Env } from '@trellis/service-platform/env';
import type { LedgerOptions } from './app.ts';
import type { LedgerEnv } from './env.ts';

/** ledger's settings from the environment; throws a ConfigError naming the bad variable. */
export function loadConfig(vars: Readonly<Record<string, string | undefined>>): {
  server: ServerSettings;
  app: LedgerOptions;
} {
  const env = new Env<LedgerEnv>(vars);
  const server = serverFromEnv(env, 8081);
  const tracing = tracingFromEnv(env, 'ledger');
  const groupId = consumerGroupFromEnv(env, 'ledger');
  return {
    server,
    app: {
      cassandra: cassandraFromEnv(env),
      kafka: kafkaFromEnv(env, 'ledger'),
      topic: env.string('ORDERS_TOPIC', ORDERS_TOPIC),
      groupId,
      identity: identityFromEnv(env),
      migrate: migrateFromEnv(env),
      log: { level: server.logLevel },
      ...(tracing ? { tracing } : {}),
    },
  };
}
