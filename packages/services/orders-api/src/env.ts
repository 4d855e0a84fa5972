/**
 * orders-api's environment, declared once: `loadConfig` (config.ts) reads only these names, and the
 * components that deploy orders-api build its environment as {@link OrdersApiEnv} and check it against
 * {@link ordersApiEnvSchema} before deploying. Documented in docs/services.md.
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

/** JSON Schema of orders-api's environment. */
export const ordersApiEnvSchema = envSchema(
  {
    ...serverEnvSchema.properties,
    ...cassandraEnvSchema.properties,
    ...kafkaEnvSchema.properties,
    ...identityEnvSchema.properties,
    ...tracingEnvSchema.properties,
    ...queueEnvSchema.properties,
    PUBLISH_TIMEOUT_MS: {
      ...envValue.integer,
      description: "How long POST waits for the queue's ack, 100..60000. @default 5000",
    },
    ORDER_CACHE_ENTRIES: {
      ...envValue.integer,
      description:
        'Orders the GET /orders/:id cache holds (LRU), 0..1000000; 0 turns it off. @default 10000',
    },
  },
  [...cassandraEnvSchema.required, ...kafkaEnvSchema.required],
);

/** orders-api's environment variables. */
export type OrdersApiEnv = FromSchema<typeof ordersApiEnvSchema>;
