/**
 * The environment of each smoke service in the local stack (pure), built as the type the service
 * exports (`ServiceEnvs`, @trellis/components/services), so a misspelt or missing variable does not
 * compile, and checked against the service's env schema before the service is started: its data stores
 * through its sidecar's egress (with address translation, so the drivers never learn the servers' own
 * addresses), identity headers as the sidecar sets them, no table migration (platform-admin applies
 * the DDL).
 */
import { identityHeaders } from '@trellis/contracts';
import {
  checkServiceEnv,
  consumerGroupOf,
  isServiceName,
  serviceEnvSchemas,
  type ServiceEnvs,
  type ServiceName,
} from '@trellis/components/services';
import { otlpTracesPath, type BoundModel, type ValidModel } from '@trellis/policy';
import type {
  CassandraEnv,
  IdentityEnv,
  KafkaEnv,
  ServerEnv,
} from '@trellis/service-platform/env-schema';
import type { DataLayer } from './data.ts';

/** What a service's local environment is built from. */
interface LocalServiceContext {
  model: ValidModel;
  workload: ServiceName;
  data: Pick<DataLayer, 'egress' | 'cassandra'>;
}

/** `127.0.0.1:<port>` of the workload's sidecar egress to a data service. */
function egressTo(c: LocalServiceContext, service: 'cassandra' | 'kafka'): string {
  const e = c.data.egress.find((x) => x.workload === c.workload && x.service === service);
  if (!e) {
    throw new Error(
      `workloads.${c.workload}.calls: the ${c.workload} service needs ${service}, but the model gives it no route there`,
    );
  }
  return `127.0.0.1:${e.listenPort}`;
}

/** What every service gets. HOST and PORT are LocalService's (the port plan's). */
function common(c: LocalServiceContext): ServerEnv & IdentityEnv & CassandraEnv & KafkaEnv {
  const cassandra = egressTo(c, 'cassandra');
  const kafka = egressTo(c, 'kafka');
  return {
    LOG_LEVEL: 'info',
    IDENTITY_PAYLOAD_HEADER: identityHeaders.jwtPayload,
    // Every request reaches the app through its sidecar, which always sets XFCC with the peer's URI.
    IDENTITY_REQUIRE_PEER: 'true',
    CASSANDRA_MIGRATE: 'false',
    CASSANDRA_CONTACT_POINTS: cassandra,
    CASSANDRA_TRANSLATE_ADDRESS: cassandra,
    CASSANDRA_LOCAL_DC: c.data.cassandra.localDataCenter,
    KAFKA_BROKERS: kafka,
    KAFKA_TRANSLATE_ADDRESS: kafka,
    KAFKA_CLIENT_ID: c.workload,
  };
}

/** `KAFKA_GROUP_ID`: the consumer group the model gives the workload (its ACL names that group). */
function consumerGroup(c: LocalServiceContext): { KAFKA_GROUP_ID?: string } {
  const group = consumerGroupOf(c.model, c.workload);
  return group !== undefined ? { KAFKA_GROUP_ID: group } : {};
}

// The order queue is the Kafka intake topic here (ORDERS_QUEUE's default): no queue variables.
const builders: { [S in ServiceName]: (c: LocalServiceContext) => ServiceEnvs[S] } = {
  'orders-api': (c) => common(c),
  'orders-writer': (c) => ({ ...common(c), ...consumerGroup(c) }),
  ledger: (c) => ({ ...common(c), ...consumerGroup(c) }),
};

/**
 * The OpenTelemetry SDK's standard variables for `workload` when the model declares tracing (ADR
 * 0023): `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the full URL of its sidecar's telemetry egress
 * (`http://127.0.0.1:<port>/v1/traces`, the pod's own loopback), and `OTEL_SERVICE_NAME`, the
 * workload's name (its sidecar's spans are `<workload>-sidecar`). Empty without tracing or without a
 * telemetry egress in the binding.
 */
export function tracingEnv(
  model: ValidModel | BoundModel,
  workload: string,
): Record<string, string> {
  if (model.tracing === undefined || !('binding' in model)) return {};
  const e = model.binding.workloads[workload]?.telemetryEgress;
  if (e === undefined) return {};
  return {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://${e.address}:${e.port}${otlpTracesPath}`,
    OTEL_SERVICE_NAME: workload,
  };
}

/**
 * The environment of the service that runs `workload`. Throws when no Trellis service implements it,
 * when the model does not route it to a data store it needs, or when the result breaks the service's
 * env schema (naming the variable).
 */
export function serviceEnv(
  model: ValidModel | BoundModel,
  workload: string,
  data: Pick<DataLayer, 'egress' | 'cassandra'>,
): Record<string, string> {
  if (!isServiceName(workload)) {
    throw new Error(
      `workloads.${workload}: no Trellis service implements it (services: ${Object.keys(serviceEnvSchemas).join(', ')})`,
    );
  }
  const env: Record<string, string> = { ...builders[workload]({ model, workload, data }) };
  // Only to a service whose env schema reads them (the services' OTel SDK set-up declares them).
  const reads = serviceEnvSchemas[workload].properties as Record<string, unknown>;
  for (const [k, v] of Object.entries(tracingEnv(model, workload)))
    if (Object.hasOwn(reads, k)) env[k] = v;
  checkServiceEnv(`workloads.${workload}`, workload, env);
  return env;
}
