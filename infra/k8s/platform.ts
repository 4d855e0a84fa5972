/**
 * The part of the Platform's arguments that follows from the platform config and the model alone, the
 * same on any Kubernetes cluster: the shared root, the policy compiled for this cluster, the identity
 * provider and the data-layer sizes. infra/k8s and infra/aws add how the gateway is exposed, its edge
 * certificate and anything cloud-specific.
 */
import type * as pulumi from '@pulumi/pulumi';
import { compileForCluster } from '@trellis/components/k8s/compile';
import { clusterIssuers } from '@trellis/components/k8s/issuers';
import type { PlatformArgs } from '@trellis/components/k8s/platform';
import { sharedRoot } from '@trellis/components/pki/sharedRoot';
import type { ValidModel } from '@trellis/policy';
import type { z } from 'zod';
import type { ResolvedService } from './images.ts';
import type { platformSchema } from './schema.ts';

/**
 * A validated platform config (infra/k8s or infra/aws), with the services' images resolved and the
 * Keycloak database password.
 */
export type PlatformConfig = Omit<z.output<typeof platformSchema>, 'services'> & {
  services: Record<string, ResolvedService>;
  keycloakDbPassword?: pulumi.Output<string>;
};

/** Platform arguments without the environment's gateway exposure and edge TLS issuer. */
export type PlatformBase = Omit<PlatformArgs, 'gatewayExposure' | 'edgeTls'>;

/** Make the shared root (`trellis-root`), compile the model for this cluster and map the config. */
export function platformBase(cfg: PlatformConfig, model: ValidModel): PlatformBase {
  const root = sharedRoot('trellis-root', cfg.rootCa, model.trustDomain);
  const compiled = compileForCluster(model, {
    region: cfg.region,
    issuers: clusterIssuers(model, cfg.idp),
    hosts: cfg.hosts,
    inClusterKeycloak: cfg.idp.mode === 'keycloak',
    ...(cfg.sloRules ? { sloRules: cfg.sloRules } : {}),
    ...(cfg.tracing ? { tracing: cfg.tracing } : {}),
  });
  return {
    model,
    cluster: cfg.cluster,
    region: cfg.region,
    root,
    compiled,
    dataplane: cfg.dataplane,
    idp:
      cfg.idp.mode === 'keycloak'
        ? {
            mode: 'keycloak',
            hostname: cfg.idp.hostname,
            database: {
              ...cfg.idp.database,
              password: cfg.keycloakDbPassword as pulumi.Output<string>,
            },
            ...(cfg.idp.instances !== undefined ? { instances: cfg.idp.instances } : {}),
          }
        : { mode: 'external', issuer: cfg.idp.issuer, jwksUri: cfg.idp.jwksUri },
    services: cfg.services,
    operators: cfg.operators,
    ...(cfg.storageClassName ? { storageClassName: cfg.storageClassName } : {}),
    ...(cfg.cassandraSize !== undefined ? { cassandraSize: cfg.cassandraSize } : {}),
    ...(cfg.kafkaReplicas !== undefined ? { kafkaReplicas: cfg.kafkaReplicas } : {}),
  };
}
