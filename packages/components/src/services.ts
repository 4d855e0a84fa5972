/**
 * The Trellis services the platform knows how to deploy, by the workload name that runs them, with
 * the schema and type of each one's environment as the service itself exports them
 * (`@trellis/<service>/env`). The local and the Kubernetes components build a service's environment
 * as {@link ServiceEnvs}`[name]`, so a misspelt or missing variable is a type error, and check the
 * values with {@link serviceEnvProblems} before deploying.
 */
import { ledgerEnvSchema, type LedgerEnv } from '@trellis/ledger/env';
import { ordersApiEnvSchema, type OrdersApiEnv } from '@trellis/orders-api/env';
import { ordersWriterEnvSchema, type OrdersWriterEnv } from '@trellis/orders-writer/env';
import type { ValidModel } from '@trellis/policy';
import {
  envProblems,
  formatEnvProblems,
  type EnvProblem,
  type EnvSchema,
} from '@trellis/service-platform/env-schema';

/** The environment type of each service, by workload name. */
export interface ServiceEnvs {
  'orders-api': OrdersApiEnv;
  'orders-writer': OrdersWriterEnv;
  ledger: LedgerEnv;
}

/** A workload name that a Trellis service implements. */
export type ServiceName = keyof ServiceEnvs;

/** The JSON Schema of each service's environment, by workload name. */
export const serviceEnvSchemas: Readonly<Record<ServiceName, EnvSchema>> = {
  'orders-api': ordersApiEnvSchema,
  'orders-writer': ordersWriterEnvSchema,
  ledger: ledgerEnvSchema,
};

/** True when a Trellis service implements workload `w`. */
export function isServiceName(w: string): w is ServiceName {
  return Object.hasOwn(serviceEnvSchemas, w);
}

/** What is wrong with `env` as the environment of `service`; empty when it is valid. */
export function serviceEnvProblems(
  service: ServiceName,
  env: Readonly<Record<string, string | undefined>>,
): EnvProblem[] {
  return envProblems(serviceEnvSchemas[service], env);
}

/**
 * Throws when `env` is not a valid environment of `service`: `<where>: env of <service> is invalid:`
 * and one `<VARIABLE> <problem>` line per problem.
 */
export function checkServiceEnv(
  where: string,
  service: ServiceName,
  env: Readonly<Record<string, string | undefined>>,
): void {
  const problems = serviceEnvProblems(service, env);
  if (problems.length > 0) {
    throw new Error(`${where}: env of ${service} is invalid:\n${formatEnvProblems(problems)}`);
  }
}

/** The Kafka consumer group the model gives `workload` (its ACL is compiled for that group). */
export function consumerGroupOf(model: ValidModel, workload: string): string | undefined {
  return Object.values(model.kafka.topics)
    .flatMap((t) => t.consumers)
    .find((c) => c.identity === workload)?.group;
}
