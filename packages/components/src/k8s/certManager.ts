import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { pinnedRelease } from './common.ts';
import type { OperatorSource } from './common.ts';
import { systemNamespaces } from '@trellis/contracts';
import { charts } from './versions.ts';

/** Arguments of {@link CertManager}. */
export interface CertManagerArgs {
  /** @default "cert-manager" */
  namespace?: string;
  /**
   * Annotations of cert-manager's ServiceAccount, e.g. `eks.amazonaws.com/role-arn` for Route 53
   * DNS-01 through IRSA (cert-manager.io/docs/configuration/acme/dns01/route53, "Service annotation";
   * the same page sets `securityContext.fsGroup: 1001` so the projected token is readable).
   */
  serviceAccountAnnotations?: Record<string, pulumi.Input<string>>;
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** Whether the chart is installed here or cert-manager is preinstalled (common.ts). @default "install" */
  operators?: OperatorSource;
}

/**
 * cert-manager, with its CRDs (`crds.enabled`). k8ssandra-operator needs it for its webhooks, and the
 * Cassandra keystores are cert-manager Certificates. The namespace stays out of the mesh: its webhook is
 * called by the API server, which has no mesh identity.
 */
export class CertManager extends pulumi.ComponentResource {
  /**
   * What cert-manager resources wait for: the release, or the namespace when cert-manager is
   * preinstalled.
   */
  public readonly release: pulumi.Resource;

  constructor(name: string, args: CertManagerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:CertManager', name, {}, opts);
    const namespace = args.namespace ?? systemNamespaces.certManager;
    const ns = new k8s.core.v1.Namespace(
      `${name}-ns`,
      { metadata: { name: namespace, labels: { 'istio-injection': 'disabled' } } },
      { parent: this, dependsOn: args.dependsOn ?? [] },
    );
    if (args.operators === 'preinstalled') {
      this.release = ns;
      this.registerOutputs({});
      return;
    }
    this.release = pinnedRelease(
      `${name}-release`,
      charts.certManager,
      {
        namespace: ns.metadata.name,
        releaseName: 'cert-manager',
        values: {
          crds: { enabled: true },
          ...(args.serviceAccountAnnotations
            ? {
                serviceAccount: { annotations: args.serviceAccountAnnotations },
                securityContext: { fsGroup: 1001 },
              }
            : {}),
          resources: {
            requests: { cpu: '50m', memory: '128Mi' },
            limits: { cpu: '500m', memory: '512Mi' },
          },
        },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
