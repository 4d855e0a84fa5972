/**
 * infra/k8s: the Trellis platform onto any Kubernetes cluster reachable with the current kubeconfig
 * (`kubernetes:context` selects the context). `pulumi up --stack dev|prod-us|prod-eu`.
 */
import type * as pulumi from '@pulumi/pulumi';
import { Platform } from '@trellis/components/k8s/platform';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { loadConfig } from './config.ts';
import { platformBase } from './platform.ts';
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
  const model = loadModelFile(cfg.modelPath ?? referenceModelPath, 'trellis:modelPath');
  checkAgainstModel(cfg, model);
  const platform = new Platform('trellis', {
    ...platformBase(cfg, model),
    gatewayExposure: cfg.gateway,
    edgeTls: { kind: cfg.edgeTls.issuerKind, name: cfg.edgeTls.issuerName },
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
