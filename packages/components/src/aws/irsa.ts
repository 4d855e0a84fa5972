import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

/** One IAM policy statement (Allow only: IRSA roles grant, they never need Deny). */
export interface AllowStatement {
  actions: string[];
  resources: pulumi.Input<string>[];
  /** IAM condition block, e.g. `{ 'ForAllValues:StringEquals': { 'route53:...': ['TXT'] } }`. */
  condition?: Record<string, Record<string, string[]>>;
}

/** Arguments of {@link IrsaRole}. */
export interface IrsaRoleArgs {
  /** The cluster's OIDC provider ARN and issuer URL (https://oidc.eks...). */
  oidcProviderArn: pulumi.Input<string>;
  oidcIssuerUrl: pulumi.Input<string>;
  /** The one ServiceAccount allowed to assume the role. */
  namespace: string;
  serviceAccount: string;
  /** Inline permissions: specific actions on specific resources. */
  statements?: AllowStatement[];
  /** Managed policies to attach (AWS-managed for add-ons only). */
  managedPolicyArns?: string[];
}

/**
 * IAM role for one Kubernetes ServiceAccount (IRSA): trusted only for that namespace/name with audience
 * sts.amazonaws.com, holding only the listed actions on the listed resources.
 * https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
 */
export class IrsaRole extends pulumi.ComponentResource {
  public readonly arn: pulumi.Output<string>;

  constructor(name: string, args: IrsaRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:IrsaRole', name, {}, opts);
    for (const [i, s] of (args.statements ?? []).entries()) {
      if (s.actions.some((a) => a === '*' || a.endsWith(':*'))) {
        throw new pulumi.ResourceError(
          `IrsaRole ${name}: statements[${i}].actions must not use wildcards`,
          this,
        );
      }
      if (s.resources.length === 0 || s.resources.some((r) => r === '*')) {
        throw new pulumi.ResourceError(
          `IrsaRole ${name}: statements[${i}].resources must name resources, not *`,
          this,
        );
      }
    }
    const assumeRolePolicy = pulumi
      .all([args.oidcProviderArn, args.oidcIssuerUrl])
      .apply(([arn, url]) => {
        const host = url.replace(/^https:\/\//, '');
        return JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Federated: arn },
              Action: 'sts:AssumeRoleWithWebIdentity',
              Condition: {
                StringEquals: {
                  [`${host}:sub`]: `system:serviceaccount:${args.namespace}:${args.serviceAccount}`,
                  [`${host}:aud`]: 'sts.amazonaws.com',
                },
              },
            },
          ],
        });
      });
    const role = new aws.iam.Role(`${name}-role`, { assumeRolePolicy }, { parent: this });
    if (args.statements && args.statements.length > 0) {
      new aws.iam.RolePolicy(
        `${name}-policy`,
        {
          role: role.id,
          policy: pulumi.jsonStringify({
            Version: '2012-10-17',
            Statement: args.statements.map((s) => ({
              Effect: 'Allow',
              Action: s.actions,
              Resource: s.resources,
              ...(s.condition ? { Condition: s.condition } : {}),
            })),
          }),
        },
        { parent: this },
      );
    }
    (args.managedPolicyArns ?? []).forEach(
      (policyArn, i) =>
        new aws.iam.RolePolicyAttachment(
          `${name}-managed-${i}`,
          { role: role.name, policyArn },
          { parent: this },
        ),
    );
    this.arn = role.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
