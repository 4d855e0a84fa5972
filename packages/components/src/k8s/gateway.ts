import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { labelKeys } from '@trellis/contracts';
import type { Gateway, HttpRoute } from '@trellis/policy';
import { objectResourceName, operatorRelease } from './common.ts';
import type { OperatorSource } from './common.ts';
import { charts, gatewayApiCrds } from './versions.ts';

const defaults = {
  controlPlaneNamespace: 'nginx-gateway',
  replicas: 2,
  resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } },
} as const;

/** Label that marks the gateway's Service (the one LoadBalancer the policy pack allows). */
export const gatewayRoleLabel = { [labelKeys.role]: 'gateway' } as const;

/**
 * Pod annotation of the data plane: ztunnel captures only its outbound traffic. The gateway's inbound
 * comes from outside the mesh (load balancer, NodePort) and must not meet the namespace's STRICT
 * PeerAuthentication and allow-nothing policy; its connections to backends still leave through ztunnel
 * with mTLS and the gateway's SPIFFE identity. Added in Istio 1.24 for internet-facing pods
 * (istio.io/latest/news/releases/1.24.x/announcing-1.24/change-notes, "Ambient mode").
 */
export const bypassInboundCapture = { 'ambient.istio.io/bypass-inbound-capture': 'true' } as const;

/** How the gateway is reached from outside the cluster. */
export type GatewayExposure =
  | { type: 'LoadBalancer' }
  /** A fixed NodePort, for an NLB with instance targets (infra/aws). */
  | { type: 'NodePort'; nodePort: number };

/** The cert-manager issuer of the edge certificate (TLS at the gateway). */
export interface EdgeTlsIssuer {
  kind: 'ClusterIssuer' | 'Issuer';
  name: string;
}

/** Arguments of {@link NginxGateway}. */
export interface NginxGatewayArgs {
  /** The Gateway compiled from the model (`compileGatewayApi`: HTTPS listeners, one per host). */
  gateway: Gateway;
  /** HTTPRoutes compiled from the model. Their parentRefs must name the Gateway. */
  routes: readonly HttpRoute[];
  /** How the data plane Service is exposed. */
  exposure: GatewayExposure;
  /** Issues the certificate of the HTTPS listeners into the Secret they reference. */
  tls: EdgeTlsIssuer;
  /**
   * Resources to wait for: Istio, cert-manager (the Certificate CRD), and the Gateway's namespace, which
   * the caller creates in ambient mode (Platform).
   */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** Namespace of the NGF control plane, outside the mesh. @default "nginx-gateway" */
  controlPlaneNamespace?: string;
  /** @default 2 */
  replicas?: number;
  /**
   * Whether NGINX Gateway Fabric and the Gateway API CRDs are installed here or preinstalled
   * (common.ts). @default "install"
   */
  operators?: OperatorSource;
}

/**
 * The edge: NGINX Gateway Fabric (Gateway API; ingress-nginx is retired). The control plane runs in its
 * own namespace outside the mesh; NGF provisions the data plane for the compiled Gateway in the Gateway's
 * namespace (ambient, docs/adr/0004-sidecar-and-ambient.md) with inbound capture bypassed. TLS terminates
 * at NGINX with a cert-manager certificate for the listener hosts; HTTPRoutes reach backends in other
 * namespaces through ReferenceGrants. Values from charts/nginx-gateway-fabric/values.yaml.
 */
export class NginxGateway extends pulumi.ComponentResource {
  /** Namespace of the Gateway and its data plane. */
  public readonly namespace: pulumi.Output<string>;
  /** Name of the Gateway resource. */
  public readonly gatewayName: pulumi.Output<string>;
  /** Port the gateway is reached on from outside (the NodePort when exposure is NodePort). */
  public readonly exposedPort: pulumi.Output<number>;
  /** Hostnames of the HTTPS listeners (the edge certificate's DNS names). */
  public readonly hostnames: pulumi.Output<string[]>;

  constructor(name: string, args: NginxGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:NginxGateway', name, {}, opts);
    const gw = args.gateway;
    const { name: gatewayName, namespace } = gw.metadata;
    if (args.exposure.type === 'NodePort') {
      const p = args.exposure.nodePort;
      if (!Number.isInteger(p) || p < 30000 || p > 32767) {
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: exposure.nodePort must be in 30000-32767, got ${p}`,
          this,
        );
      }
    }
    const listeners = gw.spec.listeners;
    if (listeners.length === 0) {
      throw new pulumi.ResourceError(`NginxGateway ${name}: gateway has no listeners`, this);
    }
    const ports = [...new Set(listeners.map((l) => l.port))];
    const secrets = [
      ...new Set(listeners.flatMap((l) => l.tls.certificateRefs.map((ref) => ref.name))),
    ];
    if (ports.length !== 1 || secrets.length !== 1) {
      throw new pulumi.ResourceError(
        `NginxGateway ${name}: listeners must share one port and one certificate Secret, got ports ${ports.join(', ')} and Secrets ${secrets.join(', ')}`,
        this,
      );
    }
    const listenerPort = ports[0] as number;
    const tlsSecret = secrets[0] as string;
    const hostnames = listeners.map((l) => l.hostname);
    args.routes.forEach((r, i) => {
      const parents = r.spec.parentRefs;
      if (!parents.some((p) => p.name === gatewayName && p.namespace === namespace)) {
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: routes[${i}] (${r.metadata.name}) has no parentRef to Gateway ${namespace}/${gatewayName}`,
          this,
        );
      }
      if (r.metadata.namespace !== namespace) {
        // The compiled listeners allow routes from their own namespace only.
        throw new pulumi.ResourceError(
          `NginxGateway ${name}: routes[${i}] (${r.metadata.name}) is in ${r.metadata.namespace}, not the Gateway's namespace ${namespace}`,
          this,
        );
      }
    });
    const replicas = args.replicas ?? defaults.replicas;
    const dependsOn = args.dependsOn ?? [];
    const cpNamespace = args.controlPlaneNamespace ?? defaults.controlPlaneNamespace;
    // The control plane is out of the mesh: the data plane's agent dials it with NGF's own TLS.
    const cpNs = new k8s.core.v1.Namespace(
      `${name}-control-plane-ns`,
      { metadata: { name: cpNamespace, labels: { 'istio-injection': 'disabled' } } },
      { parent: this, dependsOn },
    );
    const crds =
      args.operators === 'preinstalled'
        ? []
        : [
            new k8s.kustomize.v2.Directory(
              `${name}-gateway-api-crds`,
              { directory: gatewayApiCrds },
              { parent: this },
            ),
          ];
    const service =
      args.exposure.type === 'NodePort'
        ? {
            type: 'NodePort',
            externalTrafficPolicy: 'Cluster',
            nodePorts: [{ port: args.exposure.nodePort, listenerPort }],
          }
        : { type: 'LoadBalancer', externalTrafficPolicy: 'Local' };
    const release = operatorRelease(
      args.operators,
      `${name}-ngf`,
      charts.nginxGatewayFabric,
      {
        namespace: cpNs.metadata.name,
        releaseName: 'ngf',
        values: {
          nginxGateway: {
            gatewayClassName: gw.spec.gatewayClassName,
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
      { parent: this, dependsOn: [...crds, cpNs] },
    );
    const certificate = new k8s.apiextensions.CustomResource(
      `${name}-edge-cert`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: tlsSecret, namespace },
        spec: {
          secretName: tlsSecret,
          dnsNames: hostnames,
          issuerRef: { group: 'cert-manager.io', kind: args.tls.kind, name: args.tls.name },
          duration: '2160h',
          renewBefore: '720h',
          privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
          usages: ['server auth'],
        },
      },
      { parent: this, dependsOn },
    );
    // NGF copies spec.infrastructure labels and annotations onto the data plane's Deployment, pods and
    // Service (internal/controller/provisioner/objects.go, buildNginxResourceObjects).
    const gateway = new k8s.apiextensions.CustomResource(
      `${name}-gateway`,
      {
        apiVersion: gw.apiVersion,
        kind: gw.kind,
        metadata: gw.metadata,
        spec: {
          ...gw.spec,
          infrastructure: {
            labels: { ...gatewayRoleLabel },
            annotations: { ...bypassInboundCapture },
          },
        },
      },
      { parent: this, dependsOn: [...release, certificate] },
    );
    for (const route of args.routes) {
      const { apiVersion, kind, metadata, spec } = route;
      new k8s.apiextensions.CustomResource(
        objectResourceName(name, route),
        { apiVersion, kind, metadata, spec },
        { parent: this, dependsOn: [gateway] },
      );
    }
    // A backend in another namespace needs that namespace's consent: one ReferenceGrant per namespace,
    // naming each Service (gateway-api v1.4 standard channel serves ReferenceGrant as v1beta1).
    const backends = new Map<string, Set<string>>();
    for (const route of args.routes) {
      for (const rule of route.spec.rules) {
        for (const ref of rule.backendRefs) {
          if (ref.namespace === undefined || ref.namespace === namespace) continue;
          backends.set(ref.namespace, (backends.get(ref.namespace) ?? new Set()).add(ref.name));
        }
      }
    }
    for (const [backendNs, services] of [...backends.entries()].sort(([a], [b]) =>
      a.localeCompare(b),
    )) {
      new k8s.apiextensions.CustomResource(
        `${name}-grant-${backendNs}`,
        {
          apiVersion: 'gateway.networking.k8s.io/v1beta1',
          kind: 'ReferenceGrant',
          metadata: { name: `${gatewayName}-routes-from-${namespace}`, namespace: backendNs },
          spec: {
            from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace }],
            to: [...services].sort().map((s) => ({ group: '', kind: 'Service', name: s })),
          },
        },
        { parent: this, dependsOn: [...crds, ...dependsOn] },
      );
    }
    this.namespace = pulumi.output(namespace);
    this.gatewayName = pulumi.output(gatewayName);
    this.exposedPort = pulumi.output(
      args.exposure.type === 'NodePort' ? args.exposure.nodePort : listenerPort,
    );
    this.hostnames = pulumi.output(hostnames);
    this.registerOutputs({
      namespace: this.namespace,
      gatewayName: this.gatewayName,
      exposedPort: this.exposedPort,
      hostnames: this.hostnames,
    });
  }
}
