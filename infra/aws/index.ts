/**
 * infra/aws: VPC, EKS, the Trellis platform on it, the API Gateway edge (JWT authorizer → VPC link →
 * NLB → TLS to the NGINX gateway) and the SQS write queue. `pulumi up --stack dev|prod-us`.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { AcmeRoute53Issuer, route53Dns01Statements } from '@trellis/components/aws/acme';
import { EksCluster } from '@trellis/components/aws/cluster';
import { ApiEdge } from '@trellis/components/aws/edge';
import { IrsaRole } from '@trellis/components/aws/irsa';
import { Network } from '@trellis/components/aws/network';
import { WriteQueue } from '@trellis/components/aws/queue';
import { Platform } from '@trellis/components/k8s/platform';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { systemNamespaces } from '@trellis/contracts';
import { namespaceOf } from '@trellis/policy';
import { platformBase } from '@trellis/infra-k8s/platform';
import { checkAgainstModel } from '@trellis/infra-k8s/schema';
import { loadConfig } from './config.ts';

/** The program; returns the stack outputs (the kubeconfig is secret). */
export default async function main(): Promise<Record<string, pulumi.Output<unknown>>> {
  const cfg = loadConfig();
  const model = loadModelFile(cfg.modelPath ?? referenceModelPath, 'trellis:modelPath');
  checkAgainstModel(cfg, model);
  const network = new Network('trellis', cfg.network);
  const eks = new EksCluster('trellis', {
    vpcId: network.vpcId,
    privateSubnetIds: network.privateSubnetIds,
    ...cfg.eks,
  });
  const provider = new k8s.Provider('trellis-eks', {
    kubeconfig: eks.kubeconfig,
    enableServerSideApply: true,
  });
  const queue = new WriteQueue('trellis-writes', {});
  // The order queue (ADR 0022), each side with its own role: orders-api may only send accepted
  // orders; the batch writer may only receive them, extend their visibility while a batch is
  // written, and delete them once written. No other service touches the queue.
  const queueAccess: Record<string, string[]> = {
    'orders-api': ['sqs:SendMessage', 'sqs:GetQueueUrl'],
    'orders-writer': [
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:GetQueueAttributes',
    ],
  };
  const services = Object.fromEntries(
    Object.entries(cfg.services).map(([workload, d]) => {
      const actions = queueAccess[workload];
      if (!actions) return [workload, d];
      const w = model.workloads[workload];
      const role = new IrsaRole(`trellis-${workload}`, {
        oidcProviderArn: eks.oidcProviderArn,
        oidcIssuerUrl: eks.oidcIssuerUrl,
        namespace: namespaceOf(model, workload),
        serviceAccount: w?.serviceAccount ?? workload,
        statements: [{ actions, resources: [queue.arn] }],
      });
      return [
        workload,
        {
          ...d,
          serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': role.arn },
          // ORDERS_QUEUE=sqs, SQS_QUEUE_URL and SQS_REGION, as both services declare them in their
          // env schema (queueEnvSchema); the SDK takes the role from the ServiceAccount (IRSA).
          orderQueue: { url: queue.url, region: cfg.awsRegion },
        },
      ];
    }),
  );
  const base = platformBase(cfg, model);
  // cert-manager answers DNS-01 challenges in the edge zone with its own IRSA role, so the gateway gets
  // a publicly trusted certificate that API Gateway can verify.
  const dns01 = new IrsaRole('trellis-cert-manager', {
    oidcProviderArn: eks.oidcProviderArn,
    oidcIssuerUrl: eks.oidcIssuerUrl,
    namespace: systemNamespaces.certManager,
    serviceAccount: 'cert-manager',
    statements: route53Dns01Statements(cfg.edge.acme.hostedZoneId),
  });
  const edgeIssuer = 'trellis-edge-acme';
  const platform = new Platform(
    'trellis',
    {
      ...base,
      gatewayExposure: { type: 'NodePort', nodePort: cfg.edge.gatewayNodePort },
      edgeTls: { kind: 'ClusterIssuer', name: edgeIssuer },
      certManagerServiceAccountAnnotations: { 'eks.amazonaws.com/role-arn': dns01.arn },
      services,
      storageClassName: cfg.storageClassName ?? 'gp2',
    },
    { providers: [provider] },
  );
  new AcmeRoute53Issuer(
    edgeIssuer,
    {
      email: cfg.edge.acme.email,
      hostedZoneId: cfg.edge.acme.hostedZoneId,
      dnsZone: cfg.edge.acme.dnsZone,
      region: cfg.awsRegion,
      ...(cfg.edge.acme.server ? { server: cfg.edge.acme.server } : {}),
      dependsOn: [platform.certManager],
    },
    { providers: [provider] },
  );
  const provider0 = cfg.idp.mode === 'external' ? cfg.idp.provider : 'keycloak';
  const edge = new ApiEdge('trellis-edge', {
    vpcId: network.vpcId,
    vpcCidr: network.cidr,
    privateSubnetIds: network.privateSubnetIds,
    nodeAsgName: eks.nodeAsgName,
    nodeSecurityGroupId: eks.clusterSecurityGroupId,
    gatewayNodePort: cfg.edge.gatewayNodePort,
    gatewayHost: cfg.gatewayHost,
    issuer: platform.issuer,
    audiences: model.identityProviders[provider0]?.audiences ?? [],
    routes: Object.entries(model.routes).map(([name, r]) => ({
      name,
      method: r.method,
      path: r.path,
      scopes: r.auth?.scopes ?? [],
      ...(r.rateLimit ? { rateLimit: r.rateLimit } : {}),
    })),
  });
  return {
    apiEndpoint: edge.endpoint,
    authorizerIssuer: edge.authorizerIssuer,
    issuer: platform.issuer,
    clusterName: eks.name,
    kubeconfig: eks.kubeconfig,
    writeQueueUrl: queue.url,
    meshIntermediateCertPem: platform.meshIntermediateCertPem,
    rootCertPem: platform.rootCertPem,
    mtlsMode: platform.mtlsMode,
    accessLogGroup: edge.accessLogGroup,
    gatewayHost: pulumi.output(cfg.gatewayHost),
  };
}
