/**
 * The environment of a service as a contract: JSON Schema per concern (server, Cassandra, Kafka,
 * identity), which each service composes into the schema of its own environment and exports
 * (`@trellis/<service>/env`). The types derive from the schemas (json-schema-to-ts), so the components
 * that deploy a service build its environment as that type: a misspelt or missing variable is a type
 * error there, and {@link envProblems} checks the values against the same schema before deploying.
 * The service's loader reads only the names its schema declares (`Env<E>`, env.ts).
 *
 * Values are strings, as in any environment; the patterns are what the loader (config.ts) accepts,
 * except ranges and file existence, which only the loader can judge.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FromSchema } from 'json-schema-to-ts';

/** pino's levels, for `LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
/** Consistency levels a service may choose (`CASSANDRA_CONSISTENCY`); see `CassandraOptions`. */
export const CONSISTENCY_LEVELS = ['LOCAL_QUORUM', 'LOCAL_ONE', 'ONE', 'QUORUM'] as const;

const hostPort = '(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}';
const text = { type: 'string', minLength: 1 } as const;
const integer = { type: 'string', pattern: '^\\s*-?[0-9]+\\s*$' } as const;
const bool = { type: 'string', enum: ['true', 'false'] } as const;
const file = { type: 'string', minLength: 1, description: 'Path of a readable file.' } as const;
const oneHostPort = { type: 'string', pattern: `^\\s*${hostPort}\\s*$` } as const;
const hostPorts = {
  type: 'string',
  pattern: `^\\s*${hostPort}(\\s*,\\s*${hostPort})*\\s*$`,
  description: 'Comma-separated host:port list.',
} as const;
const kafkaName = { type: 'string', pattern: '^\\s*[A-Za-z0-9._-]{1,249}\\s*$' } as const;
const headerName = { type: 'string', pattern: "^\\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+\\s*$" } as const;
const spiffeId = { type: 'string', pattern: '^\\s*spiffe://[^/]+/.+$' } as const;

/**
 * An object schema of environment variables. `additionalProperties: false`: a variable the service
 * does not read is an error on the deploying side (the old `TRELLIS_KAFKA_BOOTSTRAP` would have been).
 */
export function envSchema<
  const P extends Record<string, { readonly type: 'string' }>,
  const R extends readonly (keyof P & string)[],
>(properties: P, required: R) {
  return { type: 'object', additionalProperties: false, properties, required } as const;
}

/** `HOST`, `PORT`, `LOG_LEVEL`, `SHUTDOWN_GRACE_MS` (read by `serverFromEnv`). */
export const serverEnvSchema = envSchema(
  {
    HOST: {
      ...text,
      description: 'Listen address. @default 127.0.0.1 (only the sidecar reaches the app)',
    },
    PORT: { ...integer, description: "Listen port, 1..65535. @default the service's own" },
    LOG_LEVEL: { type: 'string', enum: LOG_LEVELS, description: '@default info' },
    SHUTDOWN_GRACE_MS: {
      ...integer,
      description: 'SIGTERM drain limit, 100..120000. @default 10000',
    },
  },
  [],
);
/** The variables of {@link serverEnvSchema}. */
export type ServerEnv = FromSchema<typeof serverEnvSchema>;

/** `CASSANDRA_*` (read by `cassandraFromEnv` and `migrateFromEnv`). */
export const cassandraEnvSchema = envSchema(
  {
    CASSANDRA_CONTACT_POINTS: hostPorts,
    CASSANDRA_LOCAL_DC: { ...text, description: '@default datacenter1' },
    CASSANDRA_CONSISTENCY: {
      type: 'string',
      enum: CONSISTENCY_LEVELS,
      description: '@default LOCAL_QUORUM',
    },
    CASSANDRA_TRANSLATE_ADDRESS: {
      ...oneHostPort,
      description: 'Open every node connection to this host:port (a sidecar egress port).',
    },
    CASSANDRA_MIGRATE: { ...bool, description: 'Apply the table DDL on connect. @default true' },
    CASSANDRA_TLS_CA_FILE: file,
    CASSANDRA_TLS_CERT_FILE: file,
    CASSANDRA_TLS_KEY_FILE: file,
    CASSANDRA_TLS_SERVER_NAME: text,
    CASSANDRA_TLS_SERVER_ID: spiffeId,
  },
  ['CASSANDRA_CONTACT_POINTS'],
);
/** The variables of {@link cassandraEnvSchema}. */
export type CassandraEnv = FromSchema<typeof cassandraEnvSchema>;

/** `KAFKA_*` (read by `kafkaFromEnv`). */
export const kafkaEnvSchema = envSchema(
  {
    KAFKA_BROKERS: hostPorts,
    KAFKA_CLIENT_ID: { ...kafkaName, description: "@default the service's name" },
    KAFKA_TRANSLATE_ADDRESS: {
      ...oneHostPort,
      description: 'Open every broker connection to this host:port (a sidecar egress port).',
    },
    KAFKA_TLS_CA_FILE: file,
    KAFKA_TLS_CERT_FILE: file,
    KAFKA_TLS_KEY_FILE: file,
    KAFKA_TLS_SERVER_NAME: text,
    KAFKA_TLS_SERVER_ID: spiffeId,
  },
  ['KAFKA_BROKERS'],
);
/** The variables of {@link kafkaEnvSchema}. */
export type KafkaEnv = FromSchema<typeof kafkaEnvSchema>;

/** `IDENTITY_*` (read by `identityFromEnv`). */
export const identityEnvSchema = envSchema(
  {
    IDENTITY_PAYLOAD_HEADER: { ...headerName, description: '@default x-jwt-payload' },
    IDENTITY_XFCC_HEADER: { ...headerName, description: '@default x-forwarded-client-cert' },
    IDENTITY_REQUIRE_PEER: { ...bool, description: '@default false' },
  },
  [],
);
/** The variables of {@link identityEnvSchema}. */
export type IdentityEnv = FromSchema<typeof identityEnvSchema>;

/**
 * `ORDERS_QUEUE`, `SQS_*`: which order queue a service uses (read by `queueFromEnv`); `INTAKE_TOPIC`,
 * the Kafka topic of that queue (read by the service's loader into its `intakeTopic` option).
 */
export const queueEnvSchema = envSchema(
  {
    ORDERS_QUEUE: {
      type: 'string',
      enum: ['kafka', 'sqs'],
      description:
        'The order queue: the Kafka intake topic (local, Kubernetes) or an SQS FIFO queue (AWS). @default kafka',
    },
    SQS_QUEUE_URL: {
      ...text,
      description: 'URL of the SQS FIFO queue (ends in .fifo); required when ORDERS_QUEUE=sqs.',
    },
    SQS_REGION: {
      ...text,
      description: 'AWS region of the queue; required when ORDERS_QUEUE=sqs.',
    },
    SQS_ENDPOINT: {
      ...text,
      description:
        'Another SQS endpoint (an SQS-compatible server such as ElasticMQ); unset in AWS.',
    },
    INTAKE_TOPIC: {
      ...kafkaName,
      description: 'Kafka topic of the order queue (ORDERS_QUEUE=kafka). @default orders.intake.v1',
    },
  },
  [],
);
/** The variables of {@link queueEnvSchema}. */
export type QueueEnv = FromSchema<typeof queueEnvSchema>;

/**
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_SERVICE_NAME`
 * (read by `tracingFromEnv`): the standard
 * OpenTelemetry names. Without the endpoint tracing is off.
 */
export const tracingEnvSchema = envSchema(
  {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
      type: 'string',
      pattern: '^\\s*https?://[^\\s]+\\s*$',
      description:
        "OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces (the sidecar's pod-local egress). Unset: tracing off.",
    },
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: {
      type: 'string',
      enum: ['http/protobuf', 'http/json'],
      description: 'OTLP/HTTP encoding (gRPC is not supported). @default http/protobuf',
    },
    OTEL_SERVICE_NAME: {
      ...text,
      description: "service.name of the spans. @default the service's own name",
    },
  },
  [],
);
/** The variables of {@link tracingEnvSchema}. */
export type TracingEnv = FromSchema<typeof tracingEnvSchema>;

/** Schema fragments a service's own variables may use. */
export const envValue = { text, integer, bool, file, hostPorts, kafkaName } as const;

/** The schemas {@link envProblems} accepts: those made by {@link envSchema}. */
export type EnvSchema = ReturnType<typeof envSchema>;

/** One thing wrong with an environment, naming the variable. */
export interface EnvProblem {
  variable: string;
  problem: string;
}

const ajv = new Ajv({ allErrors: true, strict: true });
const compiled = new WeakMap<object, ValidateFunction>();

/**
 * Every way `vars` breaks `schema`: a required variable missing, one the service does not read, a value
 * of the wrong form. Empty when the environment is valid. Unset (undefined) entries count as absent.
 */
export function envProblems(
  schema: EnvSchema,
  vars: Readonly<Record<string, string | undefined>>,
): EnvProblem[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  const present = Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined));
  if (validate(present)) return [];
  return (validate.errors ?? []).map((e) => problemOf(e, present));
}

function problemOf(e: ErrorObject, vars: Record<string, unknown>): EnvProblem {
  if (e.keyword === 'required') {
    const variable = String((e.params as { missingProperty: string }).missingProperty);
    return { variable, problem: 'is required but not set' };
  }
  if (e.keyword === 'additionalProperties') {
    const variable = String((e.params as { additionalProperty: string }).additionalProperty);
    return { variable, problem: 'is not a variable this service reads' };
  }
  const variable = e.instancePath.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~');
  const value =
    typeof vars[variable] === 'string' ? vars[variable] : JSON.stringify(vars[variable]);
  const allowed =
    e.keyword === 'enum'
      ? ` (${(e.params as { allowedValues: readonly string[] }).allowedValues.join(', ')})`
      : '';
  return { variable, problem: `${e.message ?? 'is invalid'}${allowed}, got "${String(value)}"` };
}

/** {@link envProblems} as lines `<variable> <problem>`, for error messages. */
export function formatEnvProblems(problems: readonly EnvProblem[]): string {
  return problems.map((p) => `${p.variable} ${p.problem}`).join('\n');
}
