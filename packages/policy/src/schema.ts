/**
 * The policy model's schema. The TypeScript types and the published JSON Schema (docs/schema) are both
 * derived from these zod definitions, so there is one source of truth for the shape of `trellis.yaml`.
 *
 * The schema checks shape only (types, required fields, unknown fields, ranges). Everything that needs
 * the whole model (references, duplicates, system keyspaces, wildcards, justifications) is checked in
 * validate.ts, so that every rule there can name its own reason. The name, path and URL rules are
 * declared in patterns.ts: validation tests them, and the fields here carry them as JSON Schema
 * `pattern` metadata (not as zod checks, which would report them without validation's reasons), so the
 * published schema rejects what validation rejects.
 */
import { z } from 'zod';
import { jsonPatterns } from './patterns.ts';
import { minJustificationLength } from './validate/common.ts';

/** Protocols a workload port can speak. `http` ports carry routes; `grpc` and `tcp` are authorized by peer. */
export const protocols = ['http', 'grpc', 'tcp'] as const;
/** HTTP methods an edge route can name. */
export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/**
 * Cassandra permissions a model may grant. A subset of CQL's permissions (AUTHORIZE, DESCRIBE, EXECUTE and
 * UNMASK are never given to apps). https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/security.html
 */
export const cassandraPermissions = ['SELECT', 'MODIFY', 'CREATE', 'ALTER', 'DROP'] as const;

const text = z.string().min(1);

/** A non-empty string that the published JSON Schema constrains to one of validation's patterns. */
const patterned = (pattern: keyof typeof jsonPatterns) =>
  text.meta({ pattern: jsonPatterns[pattern] });
/** A record key (a name the model declares) with one of validation's patterns. */
const key = (pattern: keyof typeof jsonPatterns) =>
  z.string().meta({ pattern: jsonPatterns[pattern] });

const mtlsSchema = z
  .strictObject({
    mode: z.enum(['STRICT', 'PERMISSIVE']).meta({
      description:
        'STRICT accepts only mTLS. PERMISSIVE also accepts plaintext and needs a justification.',
    }),
    justification: z
      .string()
      .optional()
      .meta({ description: 'Required when mode is PERMISSIVE: why plaintext must be accepted.' }),
  })
  .meta({ description: 'Peer authentication mode.' });

const portSchema = z.strictObject({
  name: text.meta({ description: 'Port name, unique within the workload (e.g. http).' }),
  port: z.int().min(1).max(65535).meta({ description: 'Port number the workload listens on.' }),
  protocol: z.enum(protocols),
});

const workloadSchema = z.strictObject({
  namespace: patterned('dnsLabel')
    .optional()
    .meta({ description: 'Namespace part of the SPIFFE ID. Defaults to the model namespace.' }),
  serviceAccount: patterned('workloadName')
    .optional()
    .meta({ description: 'Service account part of the SPIFFE ID. Defaults to the workload name.' }),
  edge: z.boolean().default(false).meta({
    description: 'The edge sidecar: receives traffic from the ingress, not from the mesh.',
  }),
  mtls: mtlsSchema.optional(),
  ports: z.array(portSchema).min(1),
  calls: z.array(patterned('dnsLabel')).default([]).meta({
    description: 'Workloads, or the data services cassandra and kafka, that this one calls.',
  }),
  metrics: z
    .strictObject({
      port: text.meta({ description: 'The http port (by name) the app serves its metrics on.' }),
      path: patterned('path').meta({
        description: 'The path of its Prometheus text, e.g. /metrics.',
      }),
    })
    .optional()
    .meta({
      description:
        "The app's own Prometheus metrics. Only the metrics scraper may read them, through the sidecar's metrics listener.",
    }),
});

/** Who scrapes metrics: an identity of its own, never a workload's (it calls nothing else). */
const metricsSchema = z.strictObject({
  scraper: z
    .strictObject({
      namespace: patterned('dnsLabel')
        .optional()
        .meta({ description: 'Namespace part of the SPIFFE ID. Defaults to the model namespace.' }),
      serviceAccount: patterned('workloadName').meta({
        description: 'Service account part of the SPIFFE ID, e.g. prometheus.',
      }),
    })
    .meta({
      description:
        "The scraper's identity. It may GET each sidecar's Envoy stats and the metrics path of each workload that declares one, and nothing else.",
    }),
});

/**
 * Where spans go: the trace collector, an identity of its own (never a workload's), and the head-based
 * sampling rate of the spans the sidecars start. ADR 0023.
 */
const tracingSchema = z.strictObject({
  collector: z
    .strictObject({
      namespace: patterned('dnsLabel')
        .optional()
        .meta({ description: 'Namespace part of the SPIFFE ID. Defaults to the model namespace.' }),
      serviceAccount: patterned('workloadName').meta({
        description: 'Service account part of the SPIFFE ID, e.g. otel-collector.',
      }),
    })
    .meta({
      description:
        "The collector's identity. Every workload may export spans to it (OTLP/HTTP POST /v1/traces over mTLS); it calls nothing and nobody else is admitted.",
    }),
  sampling: z.number().default(1).meta({
    description:
      'The fraction of requests the sidecars trace (0 to 1), when no upstream decided. @default 1',
  }),
});

const roleSchema = z.strictObject({
  scopes: z
    .array(patterned('scope'))
    .min(1)
    .meta({ description: 'Scopes a token holding this role may carry.' }),
});

const identityProviderSchema = z.strictObject({
  issuer: z.url().meta({
    description: 'Exact `iss` of the tokens. https, or http to a loopback host.',
    pattern: jsonPatterns.providerUrl,
  }),
  audiences: z
    .array(text)
    .min(1)
    .meta({ description: 'Accepted `aud` values (any one suffices).' }),
  jwksUri: z.url().meta({ pattern: jsonPatterns.providerUrl }),
  scopeClaim: text.default('scope').meta({ description: 'Claim holding space-separated scopes.' }),
  roleClaim: text
    .default('realm_access.roles')
    .meta({ description: 'Claim (dotted path) holding the roles of the subject.' }),
  scopes: z
    .array(patterned('scope'))
    .min(1)
    .meta({ description: 'Every scope this provider issues.' }),
  roles: z.record(z.string(), roleSchema).default({}).meta({
    description: 'Claim-to-role mapping: the scopes a subject holding each role may get.',
  }),
});

const authSchema = z.strictObject({
  provider: patterned('dnsLabel').meta({
    description: 'Identity provider that must have issued the token.',
  }),
  scopes: z
    .array(patterned('scope'))
    .default([])
    .meta({ description: 'Scopes the token must all carry.' }),
  claims: z
    .record(key('claimName'), z.array(patterned('noWildcard')).min(1))
    .default({})
    .meta({ description: 'Claims the token must carry, each equal to one of the listed values.' }),
});

/** A route's latency and error budget at a load. */
const routeBudgetSchema = z.strictObject({
  rps: z.number().positive().meta({ description: 'Load at which the budget holds.' }),
  p50Ms: z.number().positive().optional(),
  p99Ms: z.number().positive(),
  maxErrorRate: z.number().min(0).max(1).default(0),
});

const routeSchema = z.strictObject({
  hosts: z
    .array(patterned('noWildcard'))
    .min(1)
    .meta({ description: 'Host names the edge serves this route on.' }),
  method: z.enum(httpMethods),
  path: patterned('path').meta({
    description: 'Path template: literal segments and {param} segments, e.g. /orders/{id}.',
  }),
  backend: patterned('workloadName').meta({ description: 'Workload that serves the route.' }),
  port: text.meta({ description: 'Name of the backend port (protocol http).' }),
  auth: authSchema.optional().meta({ description: 'Required: every route is authenticated.' }),
  rateLimit: z
    .strictObject({
      requestsPerSecond: z.int().min(1),
      burst: z.int().min(1),
    })
    .optional(),
  budget: routeBudgetSchema
    .optional()
    .meta({ description: 'The production budget: what the architecture promises for this route.' }),
});

const grantSchema = z.strictObject({
  identity: patterned('workloadName').meta({ description: 'Workload receiving the grant.' }),
  keyspace: patterned('keyspaceName'),
  table: patterned('cqlName')
    .optional()
    .meta({ description: 'Omit to grant on the whole keyspace.' }),
  permissions: z.array(z.enum(cassandraPermissions)).min(1),
});

const cassandraSchema = z.strictObject({
  keyspaces: z
    .record(
      key('keyspaceName'),
      z.strictObject({
        tables: z
          .array(patterned('cqlName'))
          .default([])
          .meta({ description: 'Tables that table grants may name.' }),
      }),
    )
    .default({}),
  grants: z.array(grantSchema).default([]),
});

const patternType = z.enum(['literal', 'prefixed']);

const topicSchema = z.strictObject({
  pattern: patternType
    .default('literal')
    .meta({ description: 'literal: exactly this topic; prefixed: every topic starting with it.' }),
  producers: z.array(patterned('workloadName')).default([]),
  consumers: z
    .array(
      z.strictObject({
        identity: patterned('workloadName'),
        group: patterned('kafkaName'),
        groupPattern: patternType.default('literal'),
      }),
    )
    .default([]),
});

const agentSchema = z.strictObject({
  provider: patterned('dnsLabel'),
  scopes: z
    .array(patterned('scope'))
    .min(1)
    .meta({ description: 'The narrow set of scopes the agent may request.' }),
  description: z.string().optional(),
});

const latencySchema = z.strictObject({
  p50Ms: z.number().positive(),
  p99Ms: z.number().positive(),
  rps: z.number().positive().optional(),
});

/**
 * The budgets one environment (e.g. `ci`, a 2-core runner holding the whole stack) is judged by. They
 * stand beside the production budgets, never instead of them: a route or the mesh not named here is
 * judged by its production budget, and reports show both.
 */
const environmentBudgetsSchema = z.strictObject({
  description: z.string().optional().meta({ description: 'What this environment is.' }),
  justification: z.string().meta({
    description:
      'Why the production budgets cannot hold here, and which measurement these numbers come from.',
    minLength: minJustificationLength,
  }),
  routes: z.record(key('dnsLabel'), routeBudgetSchema).optional().meta({
    description:
      "Budgets of routes (by name) in this environment, each in place of the route's production budget.",
  }),
  mesh: latencySchema
    .optional()
    .meta({ description: 'Overhead budget per Envoy traversal in this environment.' }),
});

/** The whole model, as written in trellis.yaml. */
export const modelSchema = z
  .strictObject({
    version: z.literal(1),
    trustDomain: patterned('trustDomain').meta({
      description: 'SPIFFE trust domain, e.g. trellis.local.',
    }),
    namespace: patterned('dnsLabel')
      .default('trellis')
      .meta({ description: 'Default namespace of workloads.' }),
    mtls: mtlsSchema.default({ mode: 'STRICT' }),
    regions: z.record(key('dnsLabel'), z.strictObject({ description: z.string().optional() })),
    identityProviders: z.record(key('dnsLabel'), identityProviderSchema),
    workloads: z.record(key('workloadName'), workloadSchema),
    routes: z.record(key('dnsLabel'), routeSchema).default({}),
    cassandra: cassandraSchema.default({ keyspaces: {}, grants: [] }),
    kafka: z
      .strictObject({ topics: z.record(key('topicName'), topicSchema).default({}) })
      .default({ topics: {} }),
    agents: z.record(key('dnsLabel'), agentSchema).default({}),
    metrics: metricsSchema.optional().meta({
      description: "Metrics scraping: who may read the sidecars' and apps' metrics (over mTLS).",
    }),
    tracing: tracingSchema.optional().meta({
      description: 'Distributed tracing: the collector every sidecar and app exports spans to.',
    }),
    budgets: z
      .strictObject({
        mesh: latencySchema
          .optional()
          .meta({ description: 'Production overhead budget per Envoy traversal.' }),
        environments: z.record(key('environmentName'), environmentBudgetsSchema).optional().meta({
          description:
            'Budgets per environment that cannot meet production (e.g. a small CI runner), each with its justification. Production budgets stay as they are.',
        }),
      })
      .optional(),
  })
  .meta({
    title: 'Trellis policy model',
    description: 'One identity-and-policy model for every environment (trellis.yaml).',
  });

/** The model after parsing, with defaults applied. */
export type Model = z.output<typeof modelSchema>;
/** The model as written (defaults not yet applied). */
export type ModelInput = z.input<typeof modelSchema>;
/** A workload entry. */
export type Workload = Model['workloads'][string];
/** A workload port. */
export type PortSpec = Workload['ports'][number];
/** A port protocol. */
export type Protocol = (typeof protocols)[number];
/** An identity provider entry. */
export type IdentityProvider = Model['identityProviders'][string];
/** An edge route. */
export type Route = Model['routes'][string];
/** Authentication and authorization requirements of a route. */
export type RouteAuth = NonNullable<Route['auth']>;
/** An HTTP method. */
export type HttpMethod = (typeof httpMethods)[number];
/** A Cassandra grant. */
export type CassandraGrant = Model['cassandra']['grants'][number];
/** A Cassandra permission. */
export type CassandraPermission = (typeof cassandraPermissions)[number];
/** A Kafka topic entry. */
export type KafkaTopic = Model['kafka']['topics'][string];
/** An agent: a non-human OIDC client with narrow scopes. */
export type Agent = Model['agents'][string];
/** A route's budget (production, or one environment's). */
export type RouteBudget = z.output<typeof routeBudgetSchema>;
/** The budgets of one environment, beside the production budgets. */
export type EnvironmentBudgets = z.output<typeof environmentBudgetsSchema>;
/** The metrics block: who scrapes. */
export type MetricsSpec = z.output<typeof metricsSchema>;
/** The tracing block: the collector and the sampling rate. */
export type TracingSpec = z.output<typeof tracingSchema>;
/** An mTLS mode setting. */
export type MtlsSetting = Model['mtls'];

/** The JSON Schema (draft 2020-12) of the model as written, for editors. */
export function modelJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(modelSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
}
