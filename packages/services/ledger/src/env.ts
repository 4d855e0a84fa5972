/**
 * ledger's environment, declared once: `loadConfig` (config.ts) reads only these names, and the
 * components that deploy ledger build its environment as {@link LedgerEnv} and check it against
 * {@link ledgerEnvSchema} before deploying. Documented in docs/services.md.
 */
import type { FromSchema } from 'json-schema-to-ts';
import {
  cassandraEnvSchema,
  envSchema,
  envValue,
  identityEnvSchema,
  kafkaEnvSchema,
  serverEnvSchema,
  tracingEnvSchema,
} from '@trellis/service-platform/env-schema';

/** JSON Schema of ledger's environment. */
export const ledgerEnvSchema = envSchema(
  {
    ...serverEnvSchema.properties,
    ...cassandraEnvSchema.properties,
    ...kafkaEnvSchema.properties,
    ...identityEnvSchema.properties,
    ...tracingEnvSchema.properties,
    ORDERS_TOPIC: { ...envValue.kafkaName, description: 'Topic to consume. @default orders.v1' },
    KAFKA_GROUP_ID: {
      ...envValue.kafkaName,
      description: 'Consumer group; its ACL comes from the policy model. @default ledger',
    },
  },
  [...cassandraEnvSchema.required, ...kafkaEnvSchema.required],
);

/** ledger's environment variables. */
export type LedgerEnv = FromSchema<typeof ledgerEnvSchema>;
