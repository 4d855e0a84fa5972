/**
 * Stack configuration of infra/k8s, read once and validated at runtime. A wrong value fails the
 * program before any resource is planned, with a message naming the key, e.g.
 * `trellis:services.orders-api.image.registry: must be pinned by digest (...)`.
 */
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { resolveImages } from './images.ts';
import type { ResolvedService } from './images.ts';
import { keycloakDbPassword, parseStackConfig, platformSchema } from './schema.ts';

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
export type K8sConfig = Omit<z.output<typeof k8sSchema>, 'services'> & {
  /** Each service's image resolved to `<repository>@sha256:<digest>` (images.ts). */
  services: Record<string, ResolvedService>;
  /** `trellis:keycloakDbPassword` (secret); present when idp.mode is keycloak. */
  keycloakDbPassword?: pulumi.Output<string>;
};

/** Read and validate this stack's `trellis:*` configuration. */
export function loadConfig(): K8sConfig {
  const cfg = new pulumi.Config('trellis');
  const parsed = parseStackConfig(k8sSchema, (key) => cfg.get(key));
  return {
    ...parsed,
    services: resolveImages(parsed.services, parsed.images, { projectDir: import.meta.dirname }),
    ...keycloakDbPassword(parsed.idp, () => cfg.getSecret('keycloakDbPassword')),
  };
}
