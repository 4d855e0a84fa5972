/**
 * Stack configuration of infra/k8s, read once and validated at runtime. A wrong value fails the
 * program before any resource is planned, with a message naming the key, e.g.
 * `trellis:services.orders-api.image: must be pinned by digest`.
 */
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { formatIssues, objectKeys, platformSchema } from './schema.ts';

const k8sSchema = platformSchema.extend({
  gateway: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('LoadBalancer') }),
      z.strictObject({ type: z.literal('NodePort'), nodePort: z.int().min(30000).max(32767) }),
    ])
    .default({ type: 'LoadBalancer' }),
  /**
   * The cert-manager issuer of the gateway's certificate (for the hosts in `trellis:hosts`). The
   * platform team provides it (e.g. an ACME ClusterIssuer with a DNS-01 solver): clients verify it.
   */
  edgeTls: z.strictObject({
    issuerKind: z.enum(['ClusterIssuer', 'Issuer']),
    issuerName: z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a Kubernetes name'),
  }),
});

/** Validated configuration of an infra/k8s stack. */
export type K8sConfig = z.output<typeof k8sSchema> & {
  /** `trellis:keycloakDbPassword` (secret); present when idp.mode is keycloak. */
  keycloakDbPassword?: pulumi.Output<string>;
};

/** Read and validate this stack's `trellis:*` configuration. */
export function loadConfig(): K8sConfig {
  const cfg = new pulumi.Config('trellis');
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(k8sSchema.shape)) {
    const value = cfg.get(key);
    if (value === undefined) continue;
    if (objectKeys.has(key)) {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        throw new Error(`invalid stack config: trellis:${key}: must be an object (YAML map)`);
      }
    } else if (/^\d+$/.test(value) && ['cassandraSize', 'kafkaReplicas'].includes(key)) {
      raw[key] = Number(value);
    } else {
      raw[key] = value;
    }
  }
  const parsed = k8sSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid stack config:\n${formatIssues(parsed.error)}`);
  const out: K8sConfig = parsed.data;
  if (parsed.data.idp.mode === 'keycloak') {
    const password = cfg.getSecret('keycloakDbPassword');
    if (password === undefined) {
      throw new Error(
        'invalid stack config:\ntrellis:keycloakDbPassword: required (a secret) when trellis:idp.mode is keycloak; set it with `pulumi config set --secret trellis:keycloakDbPassword`',
      );
    }
    out.keycloakDbPassword = password;
  }
  return out;
}
