import * as pulumi from '@pulumi/pulumi';
import { namespaceOf } from '@trellis/policy';
import type { Model } from '@trellis/policy';
import { IntermediateCa } from '../pki/meshCa.ts';
import type { CaMaterial } from '../pki/meshCa.ts';
import { Cassandra } from './cassandra.ts';
import { CertManager } from './certManager.ts';
import { meshNamespace } from './common.ts';
import type { DataplaneMode, K8sObject } from './common.ts';
import { NginxGateway } from './gateway.ts';
import type { GatewayExposure } from './gateway.ts';
import { Istio } from './istio.ts';
import { StrimziKafka } from './kafka.ts';
import type { KafkaUserSpec } from './kafka.ts';
import { Keycloak } from './keycloak.ts';
import type { ExternalIdp, InClusterIdp } from './keycloak.ts';
import { MeshPolicy } from './meshPolicy.ts';
import { MeshService } from './meshService.ts';

/** Per-service deployment settings (from stack config). */
export interface ServiceDeployment {
  /** Image pinned by digest. */
  image: string;
  replicas?: number;
  /** ServiceAccount annotations, e.g. IRSA role ARNs on EKS. */
  serviceAccountAnnotations?: Record<string, pulumi.Input<string>>;
  env?: Record<string, pulumi.Input<string>>;
}

/** Artefacts compiled from the model by `@trellis/policy`. */
export interface CompiledPolicy {
  /** Istio PeerAuthentication / RequestAuthentication / AuthorizationPolicy objects. */
  mesh: K8sObject[];
  /** Gateway API HTTPRoutes. */
  routes: K8sObject[];
  /** Kafka users and ACLs. */
  kafkaUsers: KafkaUserSpec[];
  /** Keycloak realm (used when the identity provider is the in-cluster Keycloak). */
  realm?: Record<string, unknown> & { realm: string };
}

/** Arguments of {@link Platform}. */
export interface PlatformArgs {
  /** The validated policy model. */
  model: Model;
  /** Cluster name, e.g. `prod-us`: names the intermediate CA and Istio's cluster. */
  cluster: string;
  /** Region key of the model (`us`, `eu`, ...): the Cassandra datacenter and Istio network. */
  region: string;
  /** The shared root CA. */
  root: CaMaterial;
  compiled: CompiledPolicy;
  /** @default "sidecar" */
  dataplane?: DataplaneMode;
  /** Identity provider: in-cluster Keycloak (realm comes from `compiled.realm`) or external. */
  idp: Omit<InClusterIdp, 'realm'> | ExternalIdp;
  gatewayExposure: GatewayExposure;
  /** Deployments of the model's non-edge workloads, by workload name. */
  services: Record<string, ServiceDeployment>;
  storageClassName?: string;
  cassandraSize?: number;
  kafkaReplicas?: number;
}

/**
 * The whole Trellis platform on one Kubernetes cluster: mesh (Istio, plug-in CA from the shared root,
 * STRICT mTLS, compiled policy), edge (NGINX Gateway Fabric + HTTPRoutes), data (Cassandra 5, Kafka
 * KRaft), identity (Keycloak or external) and the smoke services. Used by infra/k8s and infra/aws.
 */
export class Platform extends pulumi.ComponentResource {
  /** Issuer every JWT check must use (mesh RequestAuthentication and the API Gateway authorizer). */
  public readonly issuer: pulumi.Output<string>;
  /** JWKS URI of the issuer. */
  public readonly jwksUri: pulumi.Output<string>;
  /** This cluster's mesh intermediate certificate, PEM (public). */
  public readonly meshIntermediateCertPem: pulumi.Output<string>;
  /** The shared root certificate, PEM (public). */
  public readonly rootCertPem: pulumi.Output<string>;
  /** Mesh-wide mTLS mode (STRICT). */
  public readonly mtlsMode: pulumi.Output<string>;
  /** Policy objects applied, `<kind>/<namespace>/<name>`. */
  public readonly meshPolicy: pulumi.Output<string[]>;
  /** Namespace of the NGINX gateway. */
  public readonly gatewayNamespace: pulumi.Output<string>;
  /** Port the gateway is exposed on (NodePort or listener port). */
  public readonly gatewayPort: pulumi.Output<number>;
  /** Kafka bootstrap (TLS listener). */
  public readonly kafkaBootstrap: pulumi.Output<string>;
  /** Cassandra contact point. */
  public readonly cassandraContactPoint: pulumi.Output<string>;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:Platform', name, {}, opts);
    const { model } = args;
    if (!(args.region in model.regions)) {
      throw new pulumi.ResourceError(
        `Platform ${name}: region "${args.region}" is not one of the model's regions (${Object.keys(model.regions).join(', ')})`,
        this,
      );
    }
    const apps = Object.entries(model.workloads).filter(([, w]) => !w.edge);
    for (const [workload] of apps) {
      if (!args.services[workload]) {
        throw new pulumi.ResourceError(
          `Platform ${name}: services.${workload} is missing (every non-edge workload of the model needs an image)`,
          this,
        );
      }
    }
    for (const svc of Object.keys(args.services)) {
      if (!model.workloads[svc] || model.workloads[svc]?.edge) {
        throw new pulumi.ResourceError(
          `Platform ${name}: services.${svc} is not a non-edge workload of the model`,
          this,
        );
      }
    }
    if (args.idp.mode === 'keycloak' && !args.compiled.realm) {
      throw new pulumi.ResourceError(
        `Platform ${name}: compiled.realm is required when idp.mode is keycloak`,
        this,
      );
    }
    const child = { parent: this };
    const meshCa = new IntermediateCa(
      `${name}-mesh-ca`,
      { root: args.root, trustDomain: model.trustDomain, cluster: args.cluster, purpose: 'mesh' },
      child,
    );
    const dataCa = new IntermediateCa(
      `${name}-data-ca`,
      { root: args.root, trustDomain: model.trustDomain, cluster: args.cluster, purpose: 'data' },
      child,
    );
    const istio = new Istio(
      `${name}-istio`,
      {
        trustDomain: model.trustDomain,
        cluster: args.cluster,
        meshId: model.trustDomain.replace(/\./g, '-'),
        network: `net-${args.region}`,
        cacerts: meshCa.cacerts,
        dataplane: args.dataplane ?? 'sidecar',
      },
      child,
    );
    const certManager = new CertManager(`${name}-cert-manager`, { dependsOn: istio.ready }, child);
    const cassandra = new Cassandra(
      `${name}-cassandra`,
      {
        datacenter: args.region,
        dataCa: { certPem: dataCa.certPem, keyPem: dataCa.keyPem },
        ...(args.cassandraSize !== undefined ? { size: args.cassandraSize } : {}),
        ...(args.storageClassName ? { storageClassName: args.storageClassName } : {}),
        dependsOn: [...istio.ready, certManager.release],
      },
      child,
    );
    const kafka = new StrimziKafka(
      `${name}-kafka`,
      {
        users: args.compiled.kafkaUsers,
        topics: Object.fromEntries(Object.keys(model.kafka.topics).map((t) => [t, {}])),
        ...(args.kafkaReplicas !== undefined ? { replicas: args.kafkaReplicas } : {}),
        ...(args.storageClassName ? { storageClassName: args.storageClassName } : {}),
        dependsOn: istio.ready,
      },
      child,
    );
    const idp = new Keycloak(
      `${name}-idp`,
      args.idp.mode === 'keycloak'
        ? { ...args.idp, realm: args.compiled.realm!, dependsOn: istio.ready }
        : { ...args.idp, dependsOn: istio.ready },
      child,
    );
    const appNamespaces = [...new Set(apps.map(([w]) => namespaceOf(model, w)))];
    const nsResources = appNamespaces.map((ns) =>
      meshNamespace(`${name}-ns-${ns}`, ns, args.dataplane ?? 'sidecar', {
        parent: this,
        dependsOn: istio.ready,
      }),
    );
    for (const [workload, w] of apps) {
      const d = args.services[workload] as ServiceDeployment;
      new MeshService(
        `${name}-svc-${workload}`,
        {
          namespace: namespaceOf(model, workload),
          serviceAccount: w.serviceAccount ?? workload,
          image: d.image,
          ports: w.ports,
          ...(d.replicas !== undefined ? { replicas: d.replicas } : {}),
          ...(d.serviceAccountAnnotations
            ? { serviceAccountAnnotations: d.serviceAccountAnnotations }
            : {}),
          env: {
            ...(d.env ?? {}),
            TRELLIS_REGION: args.region,
            TRELLIS_OIDC_ISSUER: idp.issuer,
            TRELLIS_KAFKA_BOOTSTRAP: kafka.bootstrap,
            TRELLIS_CASSANDRA_CONTACT_POINT: cassandra.contactPoint,
          },
        },
        { parent: this, dependsOn: nsResources },
      );
    }
    const policy = new MeshPolicy(
      `${name}-policy`,
      { objects: args.compiled.mesh, dependsOn: [...istio.ready, ...nsResources] },
      child,
    );
    const gateway = new NginxGateway(
      `${name}-gateway`,
      { routes: args.compiled.routes, exposure: args.gatewayExposure, dependsOn: istio.ready },
      child,
    );
    this.issuer = idp.issuer;
    this.jwksUri = idp.jwksUri;
    this.meshIntermediateCertPem = meshCa.certPem;
    this.rootCertPem = meshCa.rootCertPem;
    this.mtlsMode = istio.mtlsMode;
    this.meshPolicy = policy.applied;
    this.gatewayNamespace = gateway.namespace;
    this.gatewayPort = gateway.exposedPort;
    this.kafkaBootstrap = kafka.bootstrap;
    this.cassandraContactPoint = cassandra.contactPoint;
    this.registerOutputs({
      issuer: this.issuer,
      jwksUri: this.jwksUri,
      meshIntermediateCertPem: this.meshIntermediateCertPem,
      rootCertPem: this.rootCertPem,
      mtlsMode: this.mtlsMode,
      meshPolicy: this.meshPolicy,
      gatewayNamespace: this.gatewayNamespace,
      gatewayPort: this.gatewayPort,
      kafkaBootstrap: this.kafkaBootstrap,
      cassandraContactPoint: this.cassandraContactPoint,
    });
  }
}
