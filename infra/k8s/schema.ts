/**
 * The runtime schema of the platform's stack configuration, shared by infra/k8s and infra/aws (which
 * installs the same platform on EKS). Only the config.ts files read `pulumi.Config`; they validate with
 * these schemas and report errors as `trellis:<key>.<path>: <reason>`.
 */
import type { Model } from '@trellis/policy';
import { z } from 'zod';
import { imagesSchema } from './images.ts';

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a lowercase DNS label');
const hostname = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a DNS name without scheme');
/** A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63. */
const labelName = z
  .string()
  .regex(
    /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/,
    'must be a Kubernetes label key',
  );
/** A Kubernetes label value: empty, or at most 63 alphanumerics, `-`, `_` and `.` inside. */
const labelValue = z
  .string()
  .regex(/^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/, 'must be a Kubernetes label value');
const httpsUrl = z.url().refine((u) => u.startsWith('https://'), 'must be an https URL');

/** `trellis:rootCa`. */
export const rootCaSchema = z.discriminatedUnion('source', [
  z.strictObject({
    source: z.literal('stack'),
    stack: z.string().regex(/^[^/\s]+\/[^/\s]+\/[^/\s]+$/, 'must be <org>/<project>/<stack>'),
  }),
  z.strictObject({ source: z.literal('self-signed') }),
]);

/** `trellis:idp`. */
export const idpSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('keycloak'),
    hostname,
    database: z.strictObject({ host: hostname, database: dnsLabel, username: z.string().min(1) }),
    instances: z.int().min(1).optional(),
  }),
  z.strictObject({
    mode: z.literal('external'),
    /** The model's identity provider this issuer stands for. */
    provider: z.string().min(1).default('keycloak'),
    issuer: httpsUrl,
    jwksUri: httpsUrl,
  }),
]);

/**
 * `trellis:services`: workload → deployment. `image` is `{ build: <name> }` or `{ registry: <ref> }`,
 * checked with its provenance by `resolveImages` (images.ts) once the whole config has parsed.
 */
export const servicesSchema = z.record(
  z.string(),
  z.strictObject({
    image: z.unknown(),
    replicas: z.int().min(1).max(50).optional(),
  }),
);

/** `trellis:hosts`: each route host of the model → this environment's public host for it. */
export const hostsSchema = z.record(z.string().min(1), hostname);

/** The platform settings common to every Kubernetes environment. */
export const platformSchema = z.strictObject({
  modelPath: z.string().min(1).optional(),
  cluster: dnsLabel,
  region: z.string().min(1),
  dataplane: z.enum(['sidecar', 'ambient']).default('sidecar'),
  rootCa: rootCaSchema,
  idp: idpSchema,
  hosts: hostsSchema,
  images: imagesSchema,
  services: servicesSchema,
  storageClassName: dnsLabel.optional(),
  cassandraSize: z.int().min(3).optional(),
  kafkaReplicas: z.int().min(3).optional(),
  /**
   * `install`: the platform installs the operators and CRDs from the pinned charts and manifests;
   * `preinstalled`: the platform team has (e.g. with GitOps), and the stack creates only its own objects.
   */
  operators: z.enum(['install', 'preinstalled']).default('install'),
  /**
   * SLO rules compiled from the route budgets as PrometheusRule objects, for a Prometheus Operator the
   * cluster already runs (Trellis installs none); `labels` are what its `ruleSelector` matches.
   * Unset: no PrometheusRule.
   */
  sloRules: z.strictObject({ labels: z.record(labelName, labelValue).optional() }).optional(),
  /**
   * Tracing from every sidecar (Istio's OpenTelemetry provider, OTLP/gRPC) to a collector the cluster
   * already runs (Trellis installs none): its Service's host name (`[<namespace>/]<hostname>`), port,
   * and the share of requests that start a trace, 0–100. Unset: no tracing; the access log is on anyway.
   */
  tracing: z
    .strictObject({
      service: z
        .string()
        .regex(
          /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\/)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/,
          'must be a host name, optionally <namespace>/<hostname>',
        ),
      port: z.int().min(1).max(65535),
      samplingPercentage: z.number().min(0).max(100),
    })
    .optional(),
});

/** Config keys whose values are JSON objects. */
export const objectKeys = new Set([
  'images',
  'rootCa',
  'idp',
  'services',
  'hosts',
  'gateway',
  'edgeTls',
  'network',
  'eks',
  'edge',
  'queue',
  'sloRules',
  'tracing',
]);

/** Config keys whose values are integers (Pulumi passes every plain value as a string). */
const integerKeys = new Set(['cassandraSize', 'kafkaReplicas']);

/** Format zod issues as `trellis:<key>.<path>: message` lines. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      // A record key's own check says why the key is wrong; zod's outer issue only says it is.
      const message = (i.code === 'invalid_key' ? i.issues[0]?.message : undefined) ?? i.message;
      return `trellis:${path.slice(1).replace(/^\[/, '[') || '<root>'}: ${message}`;
    })
    .join('\n');
}

/**
 * Validate a stack's `trellis:*` values against `schema` (platformSchema or an extension of it). `get`
 * returns a key's raw value as `pulumi.Config.get` does: objects arrive as JSON text, numbers as digits.
 * Throws `invalid stack config:` with a line per bad key.
 */
export function parseStackConfig<S extends z.ZodObject>(
  schema: S,
  get: (key: string) => string | undefined,
): z.output<S> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = get(key);
    if (value === undefined) continue;
    if (objectKeys.has(key)) {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        throw new Error(`invalid stack config: trellis:${key}: must be an object (YAML map)`);
      }
    } else if (/^\d+$/.test(value) && integerKeys.has(key)) {
      raw[key] = Number(value);
    } else {
      raw[key] = value;
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid stack config:\n${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * `trellis:keycloakDbPassword`, required when the platform runs its own Keycloak (`idp.mode` keycloak).
 * `getSecret` reads it (`pulumi.Config.getSecret`); returns `{}` for an external issuer, so the result
 * can be spread into the config object.
 */
export function keycloakDbPassword<T>(
  idp: { mode: string },
  getSecret: () => T | undefined,
): { keycloakDbPassword?: T } {
  if (idp.mode !== 'keycloak') return {};
  const password = getSecret();
  if (password === undefined) {
    throw new Error(
      'invalid stack config:\ntrellis:keycloakDbPassword: required (a secret) when trellis:idp.mode is keycloak; set it with `pulumi config set --secret trellis:keycloakDbPassword`',
    );
  }
  return { keycloakDbPassword: password };
}

/** The parts of a platform config that must agree with the policy model. */
export interface ModelBound {
  region: string;
  hosts: Record<string, string>;
  services: Record<string, unknown>;
  idp: z.output<typeof idpSchema>;
}

/**
 * Check the stack config against the policy model, naming the key at fault: the region is one of the
 * model's, every route host has an environment host, every non-edge workload has a service entry and
 * nothing else does, and an external issuer stands for a provider of the model.
 */
export function checkAgainstModel(cfg: ModelBound, model: Model): void {
  const errors: string[] = [];
  const regions = Object.keys(model.regions);
  if (!regions.includes(cfg.region)) {
    errors.push(
      `trellis:region: "${cfg.region}" is not one of the model's regions (${regions.join(', ')})`,
    );
  }
  const routeHosts = [...new Set(Object.values(model.routes).flatMap((r) => r.hosts))].sort();
  for (const h of routeHosts) {
    if (cfg.hosts[h] === undefined)
      errors.push(`trellis:hosts.${h}: missing (the model routes requests for host "${h}")`);
  }
  for (const h of Object.keys(cfg.hosts)) {
    if (!routeHosts.includes(h))
      errors.push(`trellis:hosts.${h}: no route of the model uses host "${h}"`);
  }
  const apps = Object.entries(model.workloads)
    .filter(([, w]) => !w.edge)
    .map(([n]) => n);
  for (const w of apps) {
    if (cfg.services[w] === undefined)
      errors.push(
        `trellis:services.${w}: missing (every non-edge workload of the model needs an image)`,
      );
  }
  for (const s of Object.keys(cfg.services)) {
    if (!apps.includes(s))
      errors.push(`trellis:services.${s}: not a non-edge workload of the model`);
  }
  if (cfg.idp.mode === 'external' && !model.identityProviders[cfg.idp.provider]) {
    errors.push(
      `trellis:idp.provider: "${cfg.idp.provider}" is not an identity provider of the model`,
    );
  }
  if (errors.length > 0) throw new Error(`invalid stack config:\n${errors.join('\n')}`);
}
