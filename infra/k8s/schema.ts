/**
 * The runtime schema of the platform's stack configuration, shared by infra/k8s and infra/aws (which
 * installs the same platform on EKS). Only the config.ts files read `pulumi.Config`; they validate with
 * these schemas and report errors as `trellis:<key>.<path>: <reason>`.
 */
import { z } from 'zod';

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a lowercase DNS label');
const hostname = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a DNS name without scheme');
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

/** `trellis:services`: workload → deployment. */
export const servicesSchema = z.record(
  z.string(),
  z.strictObject({
    image: z
      .string()
      .regex(/@sha256:[a-f0-9]{64}$/, 'must be pinned by digest (repo@sha256:<64 hex>)'),
    replicas: z.int().min(1).max(50).optional(),
  }),
);

/** The platform settings common to every Kubernetes environment. */
export const platformSchema = z.strictObject({
  modelPath: z.string().min(1).optional(),
  cluster: dnsLabel,
  region: z.string().min(1),
  dataplane: z.enum(['sidecar', 'ambient']).default('sidecar'),
  rootCa: rootCaSchema,
  idp: idpSchema,
  services: servicesSchema,
  storageClassName: dnsLabel.optional(),
  cassandraSize: z.int().min(3).optional(),
  kafkaReplicas: z.int().min(3).optional(),
});

/** Config keys whose values are JSON objects. */
export const objectKeys = new Set([
  'rootCa',
  'idp',
  'services',
  'gateway',
  'network',
  'edge',
  'queue',
]);

/** Format zod issues as `trellis:<key>.<path>: message` lines. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      return `trellis:${path.slice(1).replace(/^\[/, '[') || '<root>'}: ${i.message}`;
    })
    .join('\n');
}
