import * as pulumi from '@pulumi/pulumi';
import { labelKeys, systemNamespaces } from '@trellis/contracts';
import { namespaceOf, spiffeId } from '@trellis/policy';
import { splitHostPort } from '@trellis/service-platform/env';
import type { ValidModel } from '@trellis/policy';
import { IntermediateCa } from '../pki/meshCa.ts';
import type { CaMaterial } from '../pki/meshCa.ts';
import { Cassandra } from './cassandra.ts';
import { CertManager } from './certManager.ts';
import { meshNamespace } from './common.ts';
import type { DataplaneMode, OperatorSource } from './common.ts';
import { kafkaUserName, type ClusterArtefacts } from './compile.ts';
import { DataCaIssuer } from './dataTls.ts';
import { NginxGateway } from './gateway.ts';
import type { EdgeTlsIssuer, GatewayExposure } from './gateway.ts';
import { Istio } from './istio.ts';
import { StrimziKafka } from './kafka.ts';
import { Keycloak, withIssuerRoute } from './keycloak.ts';
import type { ExternalIdp, InClusterIdp } from './keycloak.ts';
import { MeshPolicy } from './meshPolicy.ts';
import { isServiceName, serviceEnvSchemas } from '../services.ts';
import { MeshService } from './meshService.ts';
import { SloRules } from './sloRules.ts';
import { MeshTelemetry } from './telemetry.ts';
import { k8sServiceEnv, type SqsOrderQueue } from './serviceEnv.ts';

/** Istio's root namespace: the Istio component installs there, mesh-wide policy lives there. */
const rootNamespace = systemNamespaces.istio;

/** Per-service deployment settings (from stack config). */
export interface ServiceDeployment {
  /** Image pinned by digest. */
  image: string;
  replicas?: number;
  /** ServiceAccount annotations, e.g. IRSA role ARNs on EKS. */
  serviceAccountAnnotations?: Record<string, pulumi.Input<string>>;
  /**
   * The SQS order queue the service uses in place of the Kafka intake topic (AWS): only for a service
   * whose environment reads `ORDERS_QUEUE` (orders-api, orders-writer). @default the Kafka topic
   */
  orderQueue?: SqsOrderQueue;
}

/** Arguments of {@link Platform}. */
export interface PlatformArgs {
  /** The validated policy model. */
  model: ValidModel;
  /** Cluster name, e.g. `prod-us`: names the intermediate CA and Istio's cluster. */
  cluster: string;
  /** Region key of the model (`us`, `eu`, ...): the Cassandra datacenter and Istio network. */
  region: string;
  /** The shared root CA. */
  root: CaMaterial;
  /** Everything compiled from the model for this cluster (`compileForCluster`, compile.ts). */
  compiled: ClusterArtefacts;
  /** @default "sidecar" */
  dataplane?: DataplaneMode;
  /** Identity provider: in-cluster Keycloak (realm comes from `compiled.realm`) or external. */
  idp: Omit<InClusterIdp, 'realm'> | ExternalIdp;
  gatewayExposure: GatewayExposure;
  /** cert-manager issuer of the edge certificate (the Gateway's HTTPS listeners). */
  edgeTls: EdgeTlsIssuer;
  /** Annotations of cert-manager's ServiceAccount (IRSA for Route 53 DNS-01 on EKS). */
  certManagerServiceAccountAnnotations?: Record<string, pulumi.Input<string>>;
  /** Deployments of the model's non-edge workloads, by workload name. */
  services: Record<string, ServiceDeployment>;
  storageClassName?: string;
  cassandraSize?: number;
  kafkaReplicas?: number;
  /**
   * Whether the platform installs the operators and CRDs (Istio, cert-manager, Strimzi, K8ssandra,
   * NGINX Gateway Fabric, Keycloak operator) or finds them preinstalled (common.ts).
   * @default "install"
   */
  operators?: OperatorSource;
}

/**
 * The whole Trellis platform on one Kubernetes cluster: mesh (Istio, plug-in CA from the shared root,
 * the compiled policy with mesh-wide STRICT mTLS, the audit access log and tracing), edge (NGINX Gateway Fabric with the compiled Gateway
 * and HTTPRoutes, TLS from cert-manager), data (Cassandra 5, Kafka KRaft with the compiled ACLs),
 * identity (Keycloak with the compiled realm, or external) and the smoke services. Used by infra/k8s and
 * infra/aws.
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
  /** Hostnames the gateway serves over HTTPS (the environment's route hosts). */
  public readonly edgeHosts: pulumi.Output<string[]>;
  /** The cert-manager release: cert-manager resources made outside the platform wait for it. */
  public readonly certManager: pulumi.Resource;
  /** `<namespace>/<name>` of the PrometheusRule objects applied (none unless asked for). */
  public readonly sloRules: pulumi.Output<string[]>;
  /** The mesh's Telemetry providers turned on: the audit access log, then the tracer (if any). */
  public readonly telemetryProviders: pulumi.Output<string[]>;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:Platform', name, {}, opts);
    const { model, compiled } = args;
    if (!(args.region in model.regions)) {
      throw new pulumi.ResourceError(
        `Platform ${name}: region "${args.region}" is not one of the model's regions (${Object.keys(model.regions).join(', ')})`,
        this,
      );
    }
    const compiledRegion = compiled.gateway.metadata.labels[labelKeys.region];
    if (compiledRegion !== args.region) {
      throw new pulumi.ResourceError(
        `Platform ${name}: compiled was compiled for region "${compiledRegion}", not "${args.region}"`,
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
    for (const [svc, d] of Object.entries(args.services)) {
      if (!model.workloads[svc] || model.workloads[svc]?.edge) {
        throw new pulumi.ResourceError(
          `Platform ${name}: services.${svc} is not a non-edge workload of the model`,
          this,
        );
      }
      if (
        d.orderQueue !== undefined &&
        !(isServiceName(svc) && Object.hasOwn(serviceEnvSchemas[svc].properties, 'ORDERS_QUEUE'))
      ) {
        throw new pulumi.ResourceError(
          `Platform ${name}: services.${svc}.orderQueue: ${svc} reads no order queue (ORDERS_QUEUE is not in its env schema)`,
          this,
        );
      }
    }
    // The mesh checks tokens against the issuers the policy was compiled with; they must be the ones
    // this platform deploys (or the external issuer it was given).
    const compiledIssuers = Object.values(compiled.model.identityProviders).map((p) => p.issuer);
    if (args.idp.mode === 'keycloak') {
      if (!compiled.realm) {
        throw new pulumi.ResourceError(
          `Platform ${name}: compiled.realm is required when idp.mode is keycloak`,
          this,
        );
      }
      const issuer = `https://${args.idp.hostname}/realms/${compiled.realm.realm}`;
      if (compiled.model.identityProviders.keycloak?.issuer !== issuer) {
        throw new pulumi.ResourceError(
          `Platform ${name}: the policy was compiled for issuer ${String(compiled.model.identityProviders.keycloak?.issuer)}, but the in-cluster Keycloak issues ${issuer}`,
          this,
        );
      }
    } else if (!compiledIssuers.includes(args.idp.issuer)) {
      throw new pulumi.ResourceError(
        `Platform ${name}: the policy was compiled for issuers ${compiledIssuers.join(', ')}, not the external issuer ${args.idp.issuer}`,
        this,
      );
    }
    const dataplane = args.dataplane ?? 'sidecar';
    const operators = args.operators ?? 'install';
    if (dataplane === 'ambient') {
      // istio.io/latest/docs/ambient/usage/l4-policy: ztunnel enforces L4 attributes only; the compiled
      // per-route rules (methods, paths, JWT claims) need a waypoint, so without one they fail closed.
      pulumi.log.warn(
        `Platform ${name}: dataplane "ambient" leaves the compiled L7 rules (paths, methods, scopes) to ztunnel, which cannot evaluate them: routes are denied until the policy targets a waypoint`,
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
        dataplane,
        namespace: rootNamespace,
        operators,
        extensionProviders: compiled.telemetry.extensionProviders,
      },
      child,
    );
    // The audit access log (and tracing, when asked) on every sidecar, mesh-wide.
    const telemetry = new MeshTelemetry(
      `${name}-telemetry`,
      { compiled: compiled.telemetry, rootNamespace, dependsOn: istio.ready },
      child,
    );
    // Every namespace the compiled policy lands in, joined to the mesh before the policy: the gateway's
    // is ambient (ADR 0004), the workloads' follow `dataplane`.
    const gatewayNamespace = compiled.gateway.metadata.namespace;
    const policyNamespaces = [
      ...new Set(compiled.mesh.map((o) => o.metadata.namespace).filter((n) => n !== rootNamespace)),
    ].sort();
    const namespaces = new Map(
      policyNamespaces.map((ns) => [
        ns,
        meshNamespace(`${name}-ns-${ns}`, ns, ns === gatewayNamespace ? 'ambient' : dataplane, {
          parent: this,
          dependsOn: istio.ready,
        }),
      ]),
    );
    const nsResources = [...namespaces.values()];
    const policy = new MeshPolicy(
      `${name}-policy`,
      { objects: compiled.mesh, rootNamespace, dependsOn: [...istio.ready, ...nsResources] },
      child,
    );
    // Data services start only once mesh-wide STRICT is in force.
    const underStrict = [...istio.ready, policy.meshWide];
    const certManager = new CertManager(
      `${name}-cert-manager`,
      {
        dependsOn: istio.ready,
        operators,
        ...(args.certManagerServiceAccountAnnotations
          ? { serviceAccountAnnotations: args.certManagerServiceAccountAnnotations }
          : {}),
      },
      child,
    );
    const cassandra = new Cassandra(
      `${name}-cassandra`,
      {
        datacenter: args.region,
        dataCa: { certPem: dataCa.certPem, keyPem: dataCa.keyPem },
        ...(args.cassandraSize !== undefined ? { size: args.cassandraSize } : {}),
        ...(args.storageClassName ? { storageClassName: args.storageClassName } : {}),
        dependsOn: [...underStrict, certManager.release],
        operators,
      },
      child,
    );
    // The services' client certificates for Cassandra and Kafka come from the data intermediate, the
    // CA both data stores trust for clients (dataTls.ts).
    const dataIssuer = new DataCaIssuer(
      `${name}-data-issuer`,
      {
        chainPem: dataCa.chainPem,
        keyPem: dataCa.keyPem,
        dependsOn: [certManager.release],
      },
      child,
    );
    const kafka = new StrimziKafka(
      `${name}-kafka`,
      {
        users: compiled.kafkaUsers,
        clientsCa: { certChainPem: dataCa.chainPem, keyPem: dataCa.keyPem },
        listenerIssuer: dataIssuer.ref,
        topics: Object.fromEntries(Object.keys(model.kafka.topics).map((t) => [t, {}])),
        ...(args.kafkaReplicas !== undefined ? { replicas: args.kafkaReplicas } : {}),
        ...(args.storageClassName ? { storageClassName: args.storageClassName } : {}),
        dependsOn: [...underStrict, dataIssuer.issuer],
        operators,
      },
      child,
    );
    const idp = new Keycloak(
      `${name}-idp`,
      args.idp.mode === 'keycloak'
        ? { ...args.idp, realm: compiled.realm!, dependsOn: underStrict, operators }
        : { ...args.idp, dependsOn: underStrict },
      child,
    );
    for (const [workload, w] of apps) {
      const d = args.services[workload] as ServiceDeployment;
      const ns = namespaceOf(model, workload);
      // The environment as the service declares it (its exported env schema), checked before deploying.
      const service = isServiceName(workload)
        ? {
            env: k8sServiceEnv({
              model,
              workload,
              region: args.region,
              cassandraContactPoint: cassandra.contactPoint,
              cassandraServerName: cassandra.contactPoint.apply((cp) => splitHostPort(cp).host),
              kafkaBootstrap: kafka.bootstrap,
              dataplane,
              ...(d.orderQueue !== undefined ? { orderQueue: d.orderQueue } : {}),
            }),
            envSchema: serviceEnvSchemas[workload],
          }
        : undefined;
      if (!service) {
        pulumi.log.warn(
          `Platform ${name}: no Trellis service implements workload ${workload}: its image gets no environment`,
          this,
        );
      }
      new MeshService(
        `${name}-svc-${workload}`,
        {
          namespace: ns,
          serviceAccount: w.serviceAccount ?? workload,
          image: d.image,
          ports: w.ports,
          ...(d.replicas !== undefined ? { replicas: d.replicas } : {}),
          ...(d.serviceAccountAnnotations
            ? { serviceAccountAnnotations: d.serviceAccountAnnotations }
            : {}),
          ...(service ?? {}),
          ...(service || callsData(w.calls)
            ? {
                clientCertificate: {
                  issuer: dataIssuer.ref,
                  // Kafka's principal (User:CN=<KafkaUser>) and Cassandra's identity (ADD IDENTITY).
                  commonName: kafkaUserName(workload),
                  uris: [spiffeId(compiled.model, workload)],
                  trustBundlePem: dataCa.chainPem,
                },
              }
            : {}),
        },
        { parent: this, dependsOn: [...nsResources, policy] },
      );
    }
    const edge =
      args.idp.mode === 'keycloak'
        ? withIssuerRoute(compiled.gateway, compiled.routes, args.idp.hostname)
        : { gateway: compiled.gateway, routes: compiled.routes };
    // Only when the target asked for them (compile.ts): the cluster's Prometheus Operator loads them.
    const sloRules = compiled.sloRules
      ? new SloRules(
          `${name}-slo`,
          {
            rules: compiled.sloRules,
            dependsOn: [...new Set(compiled.sloRules.map((r) => r.metadata.namespace))].flatMap(
              (ns) => namespaces.get(ns) ?? [],
            ),
          },
          child,
        )
      : undefined;
    const gateway = new NginxGateway(
      `${name}-gateway`,
      {
        gateway: edge.gateway,
        routes: edge.routes,
        exposure: args.gatewayExposure,
        tls: args.edgeTls,
        dependsOn: [...istio.ready, certManager.release, ...nsResources],
        operators,
      },
      child,
    );
    this.issuer = idp.issuer;
    this.jwksUri = idp.jwksUri;
    this.meshIntermediateCertPem = meshCa.certPem;
    this.rootCertPem = meshCa.rootCertPem;
    this.mtlsMode = policy.mtlsMode;
    this.meshPolicy = policy.applied;
    this.gatewayNamespace = gateway.namespace;
    this.gatewayPort = gateway.exposedPort;
    this.kafkaBootstrap = kafka.bootstrap;
    this.cassandraContactPoint = cassandra.contactPoint;
    this.edgeHosts = gateway.hostnames;
    this.certManager = certManager.release;
    this.sloRules = sloRules?.applied ?? pulumi.output([]);
    this.telemetryProviders = telemetry.providers;
    this.registerOutputs({
      telemetryProviders: this.telemetryProviders,
      sloRules: this.sloRules,
      edgeHosts: this.edgeHosts,
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

/** Whether a workload calls a data store, and so needs a client certificate. */
function callsData(calls: readonly string[]): boolean {
  return calls.includes('cassandra') || calls.includes('kafka');
}
