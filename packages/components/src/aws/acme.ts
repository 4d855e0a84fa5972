import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { AllowStatement } from './irsa.ts';

/** Let's Encrypt's production directory (a CA API Gateway trusts for HTTPS integrations). */
export const letsEncrypt = 'https://acme-v02.api.letsencrypt.org/directory';

/**
 * What cert-manager needs in Route 53 to answer DNS-01 challenges in one hosted zone, and nothing more:
 * read the change status, list the zone's records, and change only `_acme-challenge.*` TXT records.
 * cert-manager.io/docs/configuration/acme/dns01/route53 ("Set up an IAM Policy"; with `hostedZoneID`
 * set, `route53:ListHostedZonesByName` is not needed); the record-name condition is
 * `route53:ChangeResourceRecordSetsNormalizedRecordNames` (Route 53 condition keys).
 */
export function route53Dns01Statements(hostedZoneId: string): AllowStatement[] {
  const zone = `arn:aws:route53:::hostedzone/${hostedZoneId}`;
  return [
    { actions: ['route53:GetChange'], resources: ['arn:aws:route53:::change/*'] },
    { actions: ['route53:ListResourceRecordSets'], resources: [zone] },
    {
      actions: ['route53:ChangeResourceRecordSets'],
      resources: [zone],
      condition: {
        'ForAllValues:StringEquals': { 'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'] },
        'ForAllValues:StringLike': {
          'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['_acme-challenge.*'],
        },
      },
    },
  ];
}

/** Arguments of {@link AcmeRoute53Issuer}. */
export interface AcmeRoute53IssuerArgs {
  /** ACME account e-mail (expiry notices). */
  email: string;
  /** The public Route 53 hosted zone of the edge host names. */
  hostedZoneId: string;
  /** The zone's DNS name: the solver only answers for names in it. */
  dnsZone: string;
  /** AWS region for cert-manager's Route 53 client. */
  region: string;
  /** @default Let's Encrypt production */
  server?: string;
  /** cert-manager must be installed (its CRDs), with its ServiceAccount bound to the Route 53 role. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * A cert-manager ClusterIssuer that gets publicly trusted certificates from an ACME CA by DNS-01 in
 * Route 53, with the credentials of cert-manager's IRSA role (ambient credentials, which cert-manager
 * allows for ClusterIssuers). Issues the NGINX gateway's certificate, which API Gateway verifies.
 * Fields: cert-manager.io/docs/configuration/acme/dns01/route53 ("Creating an Issuer").
 */
export class AcmeRoute53Issuer extends pulumi.ComponentResource {
  /** The ClusterIssuer name, for a Certificate's issuerRef. */
  public readonly issuerName: pulumi.Output<string>;

  constructor(name: string, args: AcmeRoute53IssuerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:AcmeRoute53Issuer', name, {}, opts);
    if (!/^Z[A-Z0-9]{1,31}$/.test(args.hostedZoneId)) {
      throw new pulumi.ResourceError(
        `AcmeRoute53Issuer ${name}: hostedZoneId must be a Route 53 zone ID (Z...), got "${args.hostedZoneId}"`,
        this,
      );
    }
    const server = args.server ?? letsEncrypt;
    if (!server.startsWith('https://')) {
      throw new pulumi.ResourceError(`AcmeRoute53Issuer ${name}: server must be https`, this);
    }
    const issuer = new k8s.apiextensions.CustomResource(
      `${name}-cluster-issuer`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'ClusterIssuer',
        metadata: { name },
        spec: {
          acme: {
            server,
            email: args.email,
            privateKeySecretRef: { name: `${name}-account-key` },
            solvers: [
              {
                selector: { dnsZones: [args.dnsZone] },
                dns01: { route53: { region: args.region, hostedZoneID: args.hostedZoneId } },
              },
            ],
          },
        },
      },
      { parent: this, dependsOn: args.dependsOn ?? [] },
    );
    this.issuerName = issuer.metadata.name;
    this.registerOutputs({ issuerName: this.issuerName });
  }
}
