import type { CassandraOptions } from './cassandra.ts';
import { ConfigError, Env, splitHostPort } from './env.ts';
import {
  cassandraEnvSchema,
  identityEnvSchema,
  queueEnvSchema,
  serverEnvSchema,
  tracingEnvSchema,
  type CassandraEnv,
  type IdentityEnv,
  type KafkaEnv,
  type QueueEnv,
  type ServerEnv,
  type TracingEnv,
} from './env-schema.ts';
import { identityDefaults, type IdentityOptions } from './identity.ts';
import type { KafkaOptions } from './kafka.ts';
import type { TlsFiles } from './tls.ts';
import type { TracingOptions } from './tracing.ts';

/** Where the HTTP server listens, and how long a SIGTERM drain may take. */
export interface ServerSettings {
  host: string;
  port: number;
  logLevel: string;
  shutdownGraceMs: number;
}

/**
 * The environment variables every smoke service reads (documented in docs/services.md):
 * `HOST`, `PORT`, `LOG_LEVEL`, `SHUTDOWN_GRACE_MS`.
 */
export function serverFromEnv(env: Env<ServerEnv>, defaultPort: number): ServerSettings {
  return {
    // Loopback by default: in the mesh only the sidecar may reach the app.
    host: env.string('HOST', '127.0.0.1'),
    port: env.int('PORT', defaultPort, 1, 65_535),
    logLevel: env.oneOf('LOG_LEVEL', serverEnvSchema.properties.LOG_LEVEL.enum, 'info'),
    shutdownGraceMs: env.int('SHUTDOWN_GRACE_MS', 10_000, 100, 120_000),
  };
}

type TlsVariable =
  'TLS_CA_FILE' | 'TLS_CERT_FILE' | 'TLS_KEY_FILE' | 'TLS_SERVER_NAME' | 'TLS_SERVER_ID';

/** `<PREFIX>TLS_CA_FILE`, `..._CERT_FILE`, `..._KEY_FILE`, `..._SERVER_NAME`, `..._SERVER_ID`. */
function tlsFromEnv<P extends 'CASSANDRA_' | 'KAFKA_'>(
  env: Env<Partial<Record<`${P}${TlsVariable}`, string>>>,
  prefix: P,
): TlsFiles | undefined {
  const name = (v: TlsVariable) => `${prefix}${v}` as const;
  const caFile = env.optionalFile(name('TLS_CA_FILE'));
  const certFile = env.optionalFile(name('TLS_CERT_FILE'));
  const keyFile = env.optionalFile(name('TLS_KEY_FILE'));
  const serverName = env.optional(name('TLS_SERVER_NAME'));
  const serverId = env.optional(name('TLS_SERVER_ID'));
  if (caFile === undefined) {
    for (const [name, v] of [
      [`${prefix}TLS_CERT_FILE`, certFile],
      [`${prefix}TLS_KEY_FILE`, keyFile],
      [`${prefix}TLS_SERVER_NAME`, serverName],
      [`${prefix}TLS_SERVER_ID`, serverId],
    ] as const) {
      if (v !== undefined) throw new ConfigError(name, `is set but ${prefix}TLS_CA_FILE is not`);
    }
    return undefined;
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? `${prefix}TLS_CERT_FILE` : `${prefix}TLS_KEY_FILE`;
    throw new ConfigError(
      missing,
      'is required when the other half of the client certificate is set',
    );
  }
  if (serverId !== undefined && !/^spiffe:\/\/[^/]+\/.+/.test(serverId)) {
    throw new ConfigError(
      `${prefix}TLS_SERVER_ID`,
      `must be a SPIFFE ID (spiffe://<domain>/<path>), got "${serverId}"`,
    );
  }
  return {
    caFile,
    ...(certFile !== undefined ? { certFile } : {}),
    ...(keyFile !== undefined ? { keyFile } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
    ...(serverId !== undefined ? { serverId } : {}),
  };
}

/**
 * `CASSANDRA_CONTACT_POINTS` (required), `CASSANDRA_LOCAL_DC`, `CASSANDRA_CONSISTENCY`,
 * `CASSANDRA_TRANSLATE_ADDRESS`, and `CASSANDRA_TLS_*`.
 */
export function cassandraFromEnv(env: Env<CassandraEnv>): CassandraOptions {
  const tls = tlsFromEnv(env, 'CASSANDRA_');
  const translateTo = env.optionalHostPort('CASSANDRA_TRANSLATE_ADDRESS');
  const contactPoints = env.hostPorts('CASSANDRA_CONTACT_POINTS');
  // The driver dials every node it learns from `system.peers` at one native port (see
  // peerNativePort); contact points on different ports would leave nodes it cannot reach.
  const ports = [...new Set(contactPoints.map((c) => splitHostPort(c).port))];
  if (!translateTo && ports.length > 1)
    throw new ConfigError(
      'CASSANDRA_CONTACT_POINTS',
      `names ${ports.length} native ports (${ports.join(', ')}): the driver reaches every node it ` +
        'learns from system.peers at one port, so every contact point must use the same one',
    );
  return {
    contactPoints,
    localDataCenter: env.string('CASSANDRA_LOCAL_DC', 'datacenter1'),
    consistency: env.oneOf(
      'CASSANDRA_CONSISTENCY',
      cassandraEnvSchema.properties.CASSANDRA_CONSISTENCY.enum,
      'LOCAL_QUORUM',
    ),
    ...(tls ? { tls } : {}),
    ...(translateTo ? { translateTo } : {}),
  };
}

/** `KAFKA_BROKERS` (required), `KAFKA_CLIENT_ID`, `KAFKA_TRANSLATE_ADDRESS`, and `KAFKA_TLS_*`. */
export function kafkaFromEnv(env: Env<KafkaEnv>, defaultClientId: string): KafkaOptions {
  const tls = tlsFromEnv(env, 'KAFKA_');
  const translateTo = env.optionalHostPort('KAFKA_TRANSLATE_ADDRESS');
  const clientId = env.string('KAFKA_CLIENT_ID', defaultClientId);
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(clientId)) {
    throw new ConfigError(
      'KAFKA_CLIENT_ID',
      `must be letters, digits, ".", "_" or "-", got "${clientId}"`,
    );
  }
  return {
    brokers: env.hostPorts('KAFKA_BROKERS'),
    clientId,
    ...(tls ? { tls } : {}),
    ...(translateTo ? { translateTo } : {}),
  };
}

/**
 * `KAFKA_GROUP_ID`: the consumer group a consuming service joins (its ACL comes from the policy model);
 * `defaultGroupId` when unset. A Kafka group name: letters, digits, `.`, `_` or `-`.
 */
export function consumerGroupFromEnv(
  env: Env<{ KAFKA_GROUP_ID?: string }>,
  defaultGroupId: string,
): string {
  const groupId = env.string('KAFKA_GROUP_ID', defaultGroupId);
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(groupId)) {
    throw new ConfigError(
      'KAFKA_GROUP_ID',
      `must be letters, digits, ".", "_" or "-", got "${groupId}"`,
    );
  }
  return groupId;
}

/** `IDENTITY_PAYLOAD_HEADER`, `IDENTITY_XFCC_HEADER`, `IDENTITY_REQUIRE_PEER` (true/false). */
export function identityFromEnv(env: Env<IdentityEnv>): IdentityOptions {
  return {
    payloadHeader: env.headerName('IDENTITY_PAYLOAD_HEADER', identityDefaults.payloadHeader),
    xfccHeader: env.headerName('IDENTITY_XFCC_HEADER', identityDefaults.xfccHeader),
    requirePeer:
      env.oneOf(
        'IDENTITY_REQUIRE_PEER',
        identityEnvSchema.properties.IDENTITY_REQUIRE_PEER.enum,
        'false',
      ) === 'true',
  };
}

/** `CASSANDRA_MIGRATE` (true/false, default true): apply the table DDL on connect. */
export function migrateFromEnv(env: Env<CassandraEnv>): boolean {
  const allowed = cassandraEnvSchema.properties.CASSANDRA_MIGRATE.enum;
  return env.oneOf('CASSANDRA_MIGRATE', allowed, 'true') === 'true';
}

/** Which order queue a service uses (ADR 0022): the Kafka intake topic, or an SQS FIFO queue. */
export type QueueSettings =
  | { kind: 'kafka' }
  | {
      kind: 'sqs';
      /** `https://sqs.<region>.amazonaws.com/<account>/<name>.fifo` (or an SQS-compatible server's). */
      queueUrl: string;
      region: string;
      /** Another SQS endpoint (ElasticMQ, a VPC endpoint); absent in plain AWS. */
      endpoint?: string;
    };

/**
 * `ORDERS_QUEUE` (`kafka` or `sqs`, default `kafka`); with `sqs`, `SQS_QUEUE_URL` and `SQS_REGION`
 * (required) and `SQS_ENDPOINT` (optional). The SQS variables are ignored with `kafka`. Checks the forms
 * `SqsOrderQueue` accepts, so a bad value stops the service at start, naming the variable.
 */
export function queueFromEnv(env: Env<QueueEnv>): QueueSettings {
  const kind = env.oneOf('ORDERS_QUEUE', queueEnvSchema.properties.ORDERS_QUEUE.enum, 'kafka');
  // Read all of them in either case, so a loader reads every name its schema declares.
  const queueUrl = env.optional('SQS_QUEUE_URL');
  const region = env.optional('SQS_REGION');
  const endpoint = env.optional('SQS_ENDPOINT');
  if (kind === 'kafka') return { kind };
  if (queueUrl === undefined)
    throw new ConfigError('SQS_QUEUE_URL', 'is required when ORDERS_QUEUE=sqs but not set');
  if (region === undefined)
    throw new ConfigError('SQS_REGION', 'is required when ORDERS_QUEUE=sqs but not set');
  const url = httpUrl('SQS_QUEUE_URL', queueUrl);
  const parts = url.pathname.split('/').filter((p) => p !== '');
  if (parts.length !== 2 || !/^[A-Za-z0-9_-]{1,75}\.fifo$/.test(parts[1] ?? ''))
    throw new ConfigError(
      'SQS_QUEUE_URL',
      `must end in /<account>/<name>.fifo (a FIFO queue), got "${queueUrl}"`,
    );
  if (!/^[a-z0-9-]+$/.test(region))
    throw new ConfigError('SQS_REGION', `must be a region name (e.g. eu-west-1), got "${region}"`);
  if (endpoint !== undefined) httpUrl('SQS_ENDPOINT', endpoint);
  return { kind, queueUrl, region, ...(endpoint !== undefined ? { endpoint } : {}) };
}

function httpUrl(variable: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(variable, `must be an http(s) URL, got "${value}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ConfigError(variable, `must be an http(s) URL, got "${value}"`);
  return u;
}

/**
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (an http(s) URL; unset: tracing off, undefined),
 * `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (`http/protobuf`, the default, or `http/json`) and
 * `OTEL_SERVICE_NAME` (default `defaultServiceName`).
 */
export function tracingFromEnv(
  env: Env<TracingEnv>,
  defaultServiceName: string,
): TracingOptions | undefined {
  const raw = env.optional('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const serviceName = env.string('OTEL_SERVICE_NAME', defaultServiceName);
  const protocol = env.oneOf(
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    tracingEnvSchema.properties.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL.enum,
    'http/protobuf',
  );
  if (raw === undefined) return undefined;
  const url = httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', raw);
  if (url.username !== '' || url.password !== '')
    throw new ConfigError(
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'must not carry credentials (the sidecar authenticates the export)',
    );
  return { serviceName, endpoint: url.href, protocol };
}
