/**
 * The policy model → everything one Kubernetes cluster needs, through the real compilers of
 * `@trellis/policy` (`compileIstio`, `compileIstioTelemetry`, `compileGatewayApi`, `compileKafkaAcls`,
 * `compileKeycloakRealm`, and `compilePrometheusRules` when the cluster's monitoring stack takes SLO
 * rules).
 *
 * The compilers speak the model's own names (the local issuer, the route hosts of the local stack, the
 * edge workload `ingress`). What a cluster changes (its issuers, its hosts, the edge identity, the
 * workloads' namespaces written out) `bind` applies, with the `kubernetes` environment this module
 * builds from the target: the edge is the NGINX Gateway Fabric data plane, whose SPIFFE identity is
 * `<gateway namespace>/sa/<gateway>-<gatewayclass>` (the ServiceAccount NGF provisions for a Gateway:
 * nginx-gateway-fabric internal/controller/provisioner/objects.go, CreateNginxResourceName).
 */
import { labelKeys, systemNamespaces } from '@trellis/contracts';
import {
  bindOrThrow,
  compileGatewayApi,
  compileIstio,
  compileIstioTelemetry,
  compileKafkaAcls,
  compileKeycloakRealm,
  compilePrometheusRules,
} from '@trellis/policy';
import type {
  BoundModel,
  DataService,
  Endpoint,
  Gateway,
  HttpRoute,
  IstioResource,
  IstioTelemetryArtefacts,
  IstioTracing,
  KafkaAclBinding,
  KeycloakRealm,
  KubernetesEnvironment,
  Model,
  PrometheusRule,
  ValidModel,
} from '@trellis/policy';
import { cassandraContactPoint } from './cassandra.ts';
import { strimziBootstrap, type KafkaAcl, type KafkaUserSpec } from './kafka.ts';

/** The edge of a cluster: the Gateway NGINX Gateway Fabric serves. */
export interface ClusterGateway {
  /** Namespace of the Gateway, its HTTPRoutes and its data plane pods. */
  namespace: string;
  /** Gateway name. */
  name: string;
  /** GatewayClass (NGF's `nginxGateway.gatewayClassName`). */
  className: string;
  /** TLS Secret the HTTPS listeners serve, in the gateway namespace. */
  tlsSecretName: string;
  /** Listener port. */
  port: number;
}

/** The gateway every Trellis cluster uses (NginxGateway deploys exactly this). */
export const clusterGateway: ClusterGateway = {
  namespace: 'trellis-gateway',
  name: 'trellis',
  className: 'nginx',
  tlsSecretName: 'trellis-edge-tls',
  port: 443,
};

/** The ServiceAccount NGF gives a Gateway's data plane: `<gateway>-<gatewayclass>`. */
export function gatewayServiceAccount(gw: ClusterGateway): string {
  return `${gw.name}-${gw.className}`;
}

/** Where the model lands: one cluster in one region. */
export interface ClusterTarget {
  /** Region key of the model; only labels and names differ between regions. */
  region: string;
  /** Issuer and JWKS of each identity provider as deployed here (see issuers.ts). */
  issuers: Record<string, { issuer: string; jwksUri: string }>;
  /** Model route host → this environment's host (`trellis:hosts`). */
  hosts: Record<string, string>;
  /** Whether the model's `keycloak` provider is the in-cluster Keycloak (then its realm is compiled). */
  inClusterKeycloak: boolean;
  /** @default {@link clusterGateway} */
  gateway?: ClusterGateway;
  /** Istio's root namespace (mesh-wide PeerAuthentication). @default 'istio-system' */
  rootNamespace?: string;
  /**
   * Where the data services are reached.
   * @default the Services of the Cassandra (datacenter = region) and StrimziKafka components
   */
  dataServices?: Partial<Record<DataService, Endpoint>>;
  /**
   * SLO rules as PrometheusRule objects for the cluster's own Prometheus Operator, with these extra
   * object labels (what its `ruleSelector` matches). @default none: Trellis installs no Prometheus
   * Operator, so without it no PrometheusRule is compiled.
   */
  sloRules?: { labels?: Record<string, string> };
  /**
   * Tracing from every sidecar to the cluster's OpenTelemetry collector (OTLP/gRPC), with the share
   * of requests sampled. @default none: Trellis installs no collector; the access log is on anyway.
   */
  tracing?: IstioTracing;
}

/** What one cluster gets, all of it compiled by `@trellis/policy`. */
export interface ClusterArtefacts {
  /** The model bound to this cluster (deployed issuers, hosts, edge identity), validated. */
  model: BoundModel;
  /** `compileIstio`: PeerAuthentication (mesh-wide and per namespace), allow-nothing, ALLOW, RequestAuthentication. */
  mesh: IstioResource[];
  /** `compileGatewayApi`: the Gateway (HTTPS listeners, one per host). */
  gateway: Gateway;
  /** `compileGatewayApi`: one HTTPRoute per model route, in the gateway namespace. */
  routes: HttpRoute[];
  /** Kafka principals and their ACLs (`compileKafkaAcls`, as Strimzi KafkaUser ACL rules). */
  kafkaUsers: KafkaUserSpec[];
  /** `compileKeycloakRealm`, when the model's `keycloak` provider runs in the cluster. */
  realm?: KeycloakRealm;
  /**
   * `compileIstioTelemetry`: the mesh config's extension providers (the audit access log, and the
   * OpenTelemetry tracer when the target asks for tracing) and the mesh-wide Telemetry.
   */
  telemetry: IstioTelemetryArtefacts;
  /** `compilePrometheusRules`, one per budgeted route, when the target asks for SLO rules. */
  sloRules?: PrometheusRule[];
  /** The Gateway the artefacts were compiled for. */
  target: ClusterGateway;
}

/** The `kubernetes` environment of a cluster target, for `bind`. */
export function clusterEnvironment(target: ClusterTarget): KubernetesEnvironment {
  const gw = target.gateway ?? clusterGateway;
  return {
    kind: 'kubernetes',
    issuers: target.issuers,
    hosts: target.hosts,
    gateway: { namespace: gw.namespace, serviceAccount: gatewayServiceAccount(gw), port: gw.port },
    dataServices: target.dataServices ?? {
      cassandra: cassandraContactPoint(target.region),
      kafka: strimziBootstrap(),
    },
  };
}

/** The model bound to this cluster; throws with every error and its path. */
export function bindCluster(model: ValidModel, target: ClusterTarget): BoundModel {
  return bindOrThrow(
    model,
    clusterEnvironment(target),
    `the model as deployed in region ${target.region} is invalid`,
  );
}

/** Strimzi's names for Kafka's ACL vocabulary (KafkaUser `spec.authorization.acls[]`, AclRule schema). */
const strimzi = {
  resourceType: { TOPIC: 'topic', GROUP: 'group', CLUSTER: 'cluster' },
  patternType: { LITERAL: 'literal', PREFIXED: 'prefix' },
  operation: {
    READ: 'Read',
    WRITE: 'Write',
    CREATE: 'Create',
    DELETE: 'Delete',
    ALTER: 'Alter',
    DESCRIBE: 'Describe',
    CLUSTER_ACTION: 'ClusterAction',
    DESCRIBE_CONFIGS: 'DescribeConfigs',
    ALTER_CONFIGS: 'AlterConfigs',
    IDEMPOTENT_WRITE: 'IdempotentWrite',
    ALL: 'All',
  },
} as const;

/**
 * The KafkaUser of a workload, which is also the whole subject of its client certificate: the
 * workload name (a DNS name, so no DN escaping).
 */
export function kafkaUserName(workload: string): string {
  return workload;
}

/**
 * Strimzi's principal for a KafkaUser authenticated by certificate: `User:<subject DN>`, i.e.
 * `User:CN=<KafkaUser name>` for a certificate whose subject is only that CN.
 */
export function strimziPrincipal(workload: string): string {
  return `User:CN=${kafkaUserName(workload)}`;
}

/**
 * ACL bindings → one KafkaUser per principal, each binding one AclRule. Strimzi's User Operator owns the
 * principal (the KafkaUser's certificate CN), so the binding's principal chooses the user.
 */
export function kafkaUsersFromBindings(
  model: Model,
  bindings: readonly KafkaAclBinding[],
): KafkaUserSpec[] {
  const byPrincipal = new Map(
    Object.keys(model.workloads).map((w) => [strimziPrincipal(w), kafkaUserName(w)]),
  );
  const users = new Map<string, KafkaAcl[]>();
  for (const b of bindings) {
    const user = byPrincipal.get(b.principal);
    if (user === undefined) {
      throw new Error(`compileKafkaAcls: principal ${b.principal} is not a workload of the model`);
    }
    const acl: KafkaAcl = {
      type: b.permissionType === 'ALLOW' ? 'allow' : 'deny',
      resource: {
        type: strimzi.resourceType[b.resourceType],
        ...(b.resourceType === 'CLUSTER'
          ? {}
          : { name: b.resourceName, patternType: strimzi.patternType[b.patternType] }),
      },
      host: b.host,
      operations: [strimzi.operation[b.operation]],
    };
    users.set(user, [...(users.get(user) ?? []), acl]);
  }
  return [...users.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, acls]) => ({ name, acls }));
}

/** Compile the model for one cluster. Pure: no resources, no I/O. */
export function compileForCluster(model: ValidModel, target: ClusterTarget): ClusterArtefacts {
  const gw = target.gateway ?? clusterGateway;
  const env = bindCluster(model, target);
  const rootNamespace = target.rootNamespace ?? systemNamespaces.istio;
  const mesh = compileIstio(env, {
    region: target.region,
    rootNamespace,
    selectorLabel: labelKeys.app,
  });
  const telemetry = compileIstioTelemetry(env, {
    rootNamespace,
    region: target.region,
    ...(target.tracing ? { tracing: target.tracing } : {}),
  });
  const edge = compileGatewayApi(env, {
    namespace: gw.namespace,
    region: target.region,
    gatewayClassName: gw.className,
    gatewayName: gw.name,
    tlsSecretName: gw.tlsSecretName,
    port: gw.port,
  });
  const gateway = edge.find((o): o is Gateway => o.kind === 'Gateway');
  if (!gateway) throw new Error('compileGatewayApi returned no Gateway');
  const routes = edge.filter((o): o is HttpRoute => o.kind === 'HTTPRoute');
  const kafkaUsers = kafkaUsersFromBindings(
    env,
    compileKafkaAcls(env, { principal: strimziPrincipal }),
  );
  const realm =
    target.inClusterKeycloak && env.identityProviders.keycloak
      ? compileKeycloakRealm(env, {
          provider: 'keycloak',
          // No password grant in a cloud environment; users log in through a browser client that
          // the platform team registers with its redirect URIs.
          userClient: { clientId: 'trellis-cli', directAccessGrants: false, redirectUris: [] },
        })
      : undefined;
  const sloRules = target.sloRules
    ? compilePrometheusRules(env, {
        region: target.region,
        ...(target.sloRules.labels ? { labels: target.sloRules.labels } : {}),
      })
    : undefined;
  return {
    model: env,
    mesh,
    telemetry,
    gateway,
    routes,
    kafkaUsers,
    ...(realm ? { realm } : {}),
    ...(sloRules ? { sloRules } : {}),
    target: gw,
  };
}
