import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { IrsaRole } from './irsa.ts';

const defaults = {
  version: '1.33',
  instanceTypes: ['m6i.2xlarge'],
  desired: 6,
  min: 6,
  max: 12,
  diskGi: 100,
} as const;

/** Arguments of {@link EksCluster}. */
export interface EksClusterArgs {
  vpcId: pulumi.Input<string>;
  privateSubnetIds: pulumi.Input<string>[];
  /** Kubernetes version. @default "1.33" */
  version?: string;
  /** CIDRs allowed to reach the public API endpoint; empty keeps the endpoint private. @default [] */
  publicAccessCidrs?: string[];
  /** @default ["m6i.2xlarge"] */
  instanceTypes?: string[];
  /** @default 6 */
  desiredSize?: number;
  /** @default 6 */
  minSize?: number;
  /** @default 12 */
  maxSize?: number;
}

const role = (
  parent: pulumi.Resource,
  name: string,
  service: string,
  policies: string[],
): aws.iam.Role => {
  const r = new aws.iam.Role(
    name,
    {
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }],
      }),
    },
    { parent },
  );
  policies.forEach(
    (p, i) =>
      new aws.iam.RolePolicyAttachment(
        `${name}-${i}`,
        { role: r.name, policyArn: `arn:aws:iam::aws:policy/${p}` },
        { parent },
      ),
  );
  return r;
};

/**
 * EKS with a private API endpoint (public only for listed CIDRs), envelope encryption of Secrets with a
 * rotating KMS key, a managed node group in private subnets, the IAM OIDC provider for IRSA and the EBS
 * CSI driver (IRSA) for Cassandra and Kafka volumes.
 */
export class EksCluster extends pulumi.ComponentResource {
  public readonly name: pulumi.Output<string>;
  public readonly oidcProviderArn: pulumi.Output<string>;
  public readonly oidcIssuerUrl: pulumi.Output<string>;
  /** Kubeconfig using `aws eks get-token` (secret: it names the endpoint and CA). */
  public readonly kubeconfig: pulumi.Output<string>;
  /** Auto Scaling group of the node group (for NLB instance targets). */
  public readonly nodeAsgName: pulumi.Output<string>;
  /** Security group EKS attaches to nodes and control plane. */
  public readonly clusterSecurityGroupId: pulumi.Output<string>;

  constructor(name: string, args: EksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:EksCluster', name, {}, opts);
    const min = args.minSize ?? defaults.min;
    const max = args.maxSize ?? defaults.max;
    const desired = args.desiredSize ?? defaults.desired;
    if (!(min <= desired && desired <= max) || min < 3) {
      throw new pulumi.ResourceError(
        `EksCluster ${name}: need 3 <= minSize <= desiredSize <= maxSize, got ${min}/${desired}/${max}`,
        this,
      );
    }
    for (const c of args.publicAccessCidrs ?? []) {
      if (c === '0.0.0.0/0') {
        throw new pulumi.ResourceError(
          `EksCluster ${name}: publicAccessCidrs must not contain 0.0.0.0/0`,
          this,
        );
      }
    }
    const child = { parent: this };
    const clusterRole = role(this, `${name}-cluster-role`, 'eks.amazonaws.com', [
      'AmazonEKSClusterPolicy',
    ]);
    const nodeRole = role(this, `${name}-node-role`, 'ec2.amazonaws.com', [
      'AmazonEKSWorkerNodePolicy',
      'AmazonEKS_CNI_Policy',
      'AmazonEC2ContainerRegistryReadOnly',
    ]);
    const key = new aws.kms.Key(
      `${name}-secrets-key`,
      {
        description: `${name} EKS secrets envelope encryption`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
      },
      child,
    );
    const publicCidrs = args.publicAccessCidrs ?? [];
    const cluster = new aws.eks.Cluster(
      `${name}-eks`,
      {
        version: args.version ?? defaults.version,
        roleArn: clusterRole.arn,
        vpcConfig: {
          subnetIds: args.privateSubnetIds,
          endpointPrivateAccess: true,
          endpointPublicAccess: publicCidrs.length > 0,
          ...(publicCidrs.length > 0 ? { publicAccessCidrs: publicCidrs } : {}),
        },
        accessConfig: { authenticationMode: 'API' },
        encryptionConfig: { provider: { keyArn: key.arn }, resources: ['secrets'] },
        enabledClusterLogTypes: ['api', 'audit', 'authenticator'],
      },
      child,
    );
    const nodes = new aws.eks.NodeGroup(
      `${name}-nodes`,
      {
        clusterName: cluster.name,
        nodeRoleArn: nodeRole.arn,
        subnetIds: args.privateSubnetIds,
        instanceTypes: args.instanceTypes ?? [...defaults.instanceTypes],
        diskSize: defaults.diskGi,
        scalingConfig: { desiredSize: desired, minSize: min, maxSize: max },
        updateConfig: { maxUnavailable: 1 },
      },
      child,
    );
    const issuer = cluster.identities.apply((ids) => ids[0]?.oidcs?.[0]?.issuer ?? '');
    const oidc = new aws.iam.OpenIdConnectProvider(
      `${name}-oidc`,
      { url: issuer, clientIdLists: ['sts.amazonaws.com'] },
      child,
    );
    const ebsRole = new IrsaRole(
      `${name}-ebs-csi`,
      {
        oidcProviderArn: oidc.arn,
        oidcIssuerUrl: issuer,
        namespace: 'kube-system',
        serviceAccount: 'ebs-csi-controller-sa',
        managedPolicyArns: ['arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy'],
      },
      child,
    );
    new aws.eks.Addon(
      `${name}-ebs-csi`,
      {
        clusterName: cluster.name,
        addonName: 'aws-ebs-csi-driver',
        serviceAccountRoleArn: ebsRole.arn,
      },
      { parent: this, dependsOn: [nodes] },
    );
    this.name = cluster.name;
    this.oidcProviderArn = oidc.arn;
    this.oidcIssuerUrl = issuer;
    this.nodeAsgName = nodes.resources.apply((r) => r[0]?.autoscalingGroups?.[0]?.name ?? '');
    this.clusterSecurityGroupId = cluster.vpcConfig.clusterSecurityGroupId;
    this.kubeconfig = pulumi.secret(
      pulumi
        .all([cluster.name, cluster.endpoint, cluster.certificateAuthority.data])
        .apply(([n, endpoint, ca]) =>
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [
              { name: n, cluster: { server: endpoint, 'certificate-authority-data': ca } },
            ],
            contexts: [{ name: n, context: { cluster: n, user: n } }],
            'current-context': n,
            users: [
              {
                name: n,
                user: {
                  exec: {
                    apiVersion: 'client.authentication.k8s.io/v1beta1',
                    command: 'aws',
                    args: ['eks', 'get-token', '--cluster-name', n],
                  },
                },
              },
            ],
          }),
        ),
    );
    this.registerOutputs({ name: this.name, oidcProviderArn: this.oidcProviderArn });
  }
}
