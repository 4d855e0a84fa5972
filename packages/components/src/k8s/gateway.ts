import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { meshNamespace, objectResourceName, pinnedRelease } from './common.ts';
import type { K8sObject } from './common.ts';
import { charts, gatewayApiCrds } from './versions.ts';

const defaults = {
  namespace: 'trellis-gateway',
  gatewayName: 'trellis',
  gatewayClassName: 'nginx',
  listenerPort: 80,
  replicas: 2,
  resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } },
} as const;

/** How the gateway is reached from outside the cluster. */
export type GatewayExposure =
  | { type: 'LoadBalancer' }
  /** A fixed NodePort, for an NLB with instance targets (infra/aws). */
  | { type: 'NodePort'; nodePort: number };

/** Arguments of {@link NginxGateway}. */
export interface NginxGatewayArgs {
  /** HTTPRoutes compiled from the model (`compileGatewayApi`). Their parentRefs must name this Gateway. */
  routes: K8sObject[];
  /** How the data plane Service is exposed. */
  exposure: GatewayExposure;
  /** Resources to wait for (Istio up, so the namespace is captured by ztunnel from the start). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** @default "trellis-gateway" */
  namespace?: string;
  /** @default "trellis" */
  gatewayName?: string;
  /** @default 2 */
  replicas?: number;
}

/**
 * The edge: NGINX Gateway Fabric (Gateway API; ingress-nginx is retired) in an ambient namespace, so
 * that its connections to backend pod IPs leave through ztunnel with mTLS and the gateway's own SPIFFE
 * identity (docs/adr/0004-sidecar-and-ambient.md). Values from charts/nginx-gateway-fabric/values.yaml.
 */
export class NginxGateway extends pulumi.ComponentResource {
  /** Namespace of the Gateway and its data plane. */
  public readonly namespace: pulumi.Output<string>;
  /** Name of the Gateway resource. */
  public readonly gatewayName: pulumi.Output<string>;
  /** Port the Gateway listener accepts on (the NodePort when exposure is NodePort). */
  public readonly exposedPort: pulumi.Output<number>;

  constructor(name: string, args: NginxGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:NginxGateway', name, {}, opts);
    const namespace = args.namespace ?? defaults.namespace;
    const gatewayName = args.gatewayName ?? defaults.gatewayName;
    if (args.exposure.type === 'NodePort') {
      const p = args.exposure.nodePort;
      if (!Number.isInteger(p) || p < 30000 || p > 32767) {
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: exposure.nodePort must be in 30000-32767, got ${p}`,
          this,
        );
      }
    }
    args.routes.forEach((r, i) => {
      if (r.kind !== 'HTTPRoute') {
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: routes[${i}] is a ${r.kind}, not an HTTPRoute`,
          this,
        );
      }
      const parents = (
        (r.spec as { parentRefs?: { name?: string }[] } | undefined)?.parentRefs ?? []
      ).map((p) => p.name);
      if (!parents.includes(gatewayName)) {
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: routes[${i}] (${r.metadata.name}) has no parentRef to Gateway "${gatewayName}"`,
          this,
        );
      }
    });
    const replicas = args.replicas ?? defaults.replicas;
    const dependsOn = args.dependsOn ?? [];
    const ns = meshNamespace(`${name}-ns`, namespace, 'ambient', { parent: this, dependsOn });
    const crds = new k8s.kustomize.v2.Directory(
      `${name}-gateway-api-crds`,
      { directory: gatewayApiCrds },
      { parent: this },
    );
    const service =
      args.exposure.type === 'NodePort'
        ? {
            type: 'NodePort',
            externalTrafficPolicy: 'Cluster',
            nodePorts: [{ port: args.exposure.nodePort, listenerPort: defaults.listenerPort }],
          }
        : { type: 'LoadBalancer', externalTrafficPolicy: 'Local' };
    const release = pinnedRelease(
      `${name}-ngf`,
      charts.nginxGatewayFabric,
      {
        namespace: ns.metadata.name,
        releaseName: 'ngf',
        values: {
          nginxGateway: {
            gatewayClassName: defaults.gatewayClassName,
            productTelemetry: { enable: false },
            resources: {
              requests: { cpu: '100m', memory: '128Mi' },
              limits: { cpu: '500m', memory: '512Mi' },
            },
          },
          nginx: {
            replicas,
            service,
            container: { resources: defaults.resources },
          },
        },
      },
      { parent: this, dependsOn: [crds, ns] },
    );
    const gateway = new k8s.apiextensions.CustomResource(
      `${name}-gateway`,
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: gatewayName, namespace: ns.metadata.name },
        spec: {
          gatewayClassName: defaults.gatewayClassName,
          listeners: [
            {
              name: 'http',
              port: defaults.listenerPort,
              protocol: 'HTTP',
              allowedRoutes: { namespaces: { from: 'All' } },
            },
          ],
        },
      },
      { parent: this, dependsOn: [release] },
    );
    for (const route of args.routes) {
      const { apiVersion, kind, metadata, ...rest } = route;
      new k8s.apiextensions.CustomResource(
        objectResourceName(name, route),
        { apiVersion, kind, metadata, ...rest },
        { parent: this, dependsOn: [gateway] },
      );
    }
    this.namespace = ns.metadata.name;
    this.gatewayName = pulumi.output(gatewayName);
    this.exposedPort = pulumi.output(
      args.exposure.type === 'NodePort' ? args.exposure.nodePort : defaults.listenerPort,
    );
    this.registerOutputs({
      namespace: this.namespace,
      gatewayName: this.gatewayName,
      exposedPort: this.exposedPort,
    });
  }
}
