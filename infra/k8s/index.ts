/**
 * infra/k8s: the Trellis platform onto any Kubernetes cluster reachable with the current kubeconfig
 * (`kubernetes:context` selects the context). `pulumi up --stack dev|prod-us|prod-eu`.
 */
import type * as pulumi from '@pulumi/pulumi';
import { compileForCluster } from '@trellis/components/k8s/compile';
import { clusterIssuers } from '@trellis/components/k8s/issuers';
import { Platform } from '@trellis/components/k8s/platform';
import { sharedRoot } from '@trellis/components/pki/sharedRoot';
import { loadConfig } from './config.ts';
import { loadModel } from './model.ts';
import { checkAgainstModel } from './schema.ts';

/** Stack outputs. None of them is secret material. */
export interface K8sOutputs {
  issuer: pulumi.Output<string>;
  jwksUri: pulumi.Output<string>;
  rootCertPem: pulumi.Output<string>;
  meshIntermediateCertPem: pulumi.Output<string>;
  mtlsMode: pulumi.Output<string>;
  meshPolicy: pulumi.Output<string[]>;
  gatewayNamespace: pulumi.Output<string>;
  gatewayPort: pulumi.Output<number>;
  edgeHosts: pulumi.Output<string[]>;
  kafkaBootstrap: pulumi.Output<string>;
  cassandraContactPoint: pulumi.Output<string>;
}

/** The program. */
export default async function main(): Promise<K8sOutputs> {
  const cfg = loadConfig();
  const model = loadModel(cfg.modelPath);
  checkAgainstModel(cfg, model);
  const root = sharedRoot('trellis-root', cfg.rootCa, model.trustDomain);
  const compiled = compileForCluster(model, {
    region: cfg.region,
    issuers: clusterIssuers(model, cfg.idp),
    hosts: cfg.hosts,
    inClusterKeycloak: cfg.idp.mode === 'keycloak',
  });
  const platform = new Platform('trellis', {
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
    gatewayExposure: cfg.gateway,
    edgeTls: { kind: cfg.edgeTls.issuerKind, name: cfg.edgeTls.issuerName },
    services: cfg.services,
    ...(cfg.storageClassName ? { storageClassName: cfg.storageClassName } : {}),
    ...(cfg.cassandraSize !== undefined ? { cassandraSize: cfg.cassandraSize } : {}),
    ...(cfg.kafkaReplicas !== undefined ? { kafkaReplicas: cfg.kafkaReplicas } : {}),
  });
  return {
    issuer: platform.issuer,
    jwksUri: platform.jwksUri,
    rootCertPem: platform.rootCertPem,
    meshIntermediateCertPem: platform.meshIntermediateCertPem,
    mtlsMode: platform.mtlsMode,
    meshPolicy: platform.meshPolicy,
    gatewayNamespace: platform.gatewayNamespace,
    gatewayPort: platform.gatewayPort,
    edgeHosts: platform.edgeHosts,
    kafkaBootstrap: platform.kafkaBootstrap,
    cassandraContactPoint: platform.cassandraContactPoint,
  };
}
