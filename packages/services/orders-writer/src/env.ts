/**
 * orders-writer's environment, declared once: `loadConfig` (config.ts) reads only these names, and the
 * components that deploy orders-writer build its environment as {@link OrdersWriterEnv} and check it
 * against {@link ordersWriterEnvSchema} before deploying. Documented in docs/services.md.
 */
import type { FromSchema } from 'json-schema-to-ts';
import {
  cassandraEnvSchema,
  envSchema,
  envValue,
  identityEnvSchema,
  kafkaEnvSchema,
  queueEnvSchema,
  serverEnvSchema,
  tracingEnvSchema,
} from '@trellis/service-platform/env-schema';

/** JSON Schema of orders-writer's environment. */
export const ordersWriterEnvSchema = envSchema(
  {
    ...serverEnvSchema.properties,
    ...cassandraEnvSchema.properties,
    ...kafkaEnvSchema.properties,
    ...identityEnvSchema.properties,
    ...tracingEnvSchema.properties,
    ...queueEnvSchema.properties,
    ORDERS_TOPIC: {
      ...envValue.kafkaName,
      description: 'Topic the order.created events go to, after the write. @default orders.v1',
    },
    KAFKA_GROUP_ID: {
      ...envValue.kafkaName,
      description:
        'Consumer group on the intake topic; its ACL comes from the policy model. @default orders-writer',
    },
    WRITER_BATCH_MAX: {
      ...envValue.integer,
      description: 'Most orders written to Cassandra per batch, 1..1000. @default 100',
    },
    WRITER_BATCH_WAIT_MS: {
      ...envValue.integer,
      description:
        'Longest wait to fill a batch once the first order is there, 0..5000. @default 20',
    },
  },
  [...cassandraEnvSchema.required, ...kafkaEnvSchema.required],
);

/** orders-writer's environment variables. */
export type OrdersWriterEnv = FromSchema<typeof ordersWriterEnvSchema>;
