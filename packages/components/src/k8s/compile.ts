/**
 * The policy model → everything one Kubernetes cluster needs, through the real compilers of
 * `@trellis/policy` (`compileIstio`, `compileGatewayApi`, `compileKafkaAcls`, `compileKeycloakRealm`).
 *
 * The compilers speak the model's own names (the local issuer, the route hosts of the local stack, the
 * edge workload `ingress`). A cluster differs in exactly three ways, applied here to a copy of the model
 * that is validated again before anything is compiled:
 * - each identity provider's issuer and JWKS are the ones deployed in this environment;
 * - each route host is the environment's host for it (`trellis:hosts`);
 * - the edge workload is the NGINX Gateway Fabric data plane, whose SPIFFE identity is
 *   `<gateway namespace>/sa/<gateway>-<gatewayclass>` (the ServiceAccount NGF provisions for a Gateway:
 *   nginx-gateway-fabric internal/controller/provisioner/objects.go, CreateNginxResourceName).
 * Every other workload gets its namespace written out, so that moving the Gateway API objects to the
 * gateway namespace does not move the workloads.
 */
import { labelKeys, systemNamespaces } from '@trellis/contracts';
import {
  compileGatewayApi,
  compileIstio,
  compileKafkaAcls,
  compileKeycloakRealm,
  formatErrors,
  namespaceOf,
  validateModel,
} from '@trellis/policy';
import type {
  Gateway,
  HttpRoute,
  IstioResource,
  KafkaAclBinding,
  KeycloakRealm,
  Model,
  ValidModel,
} from '@trellis/policy';
import type { KafkaAcl, KafkaUserSpec } from './kafka.ts';

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
}

/** What one cluster gets, all of it compiled by `@trellis/policy`. */
export interface ClusterArtefacts {
  /** The environment's model (deployed issuers, hosts, edge identity), validated. */
  model: ValidModel;
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
  /** The Gateway the artefacts were compiled for. */
  target: ClusterGateway;
}

const clone = <T>(v: T): T => structuredClone(v);

/** The model as it is deployed in this cluster, validated; throws with every error and its path. */
export function environmentModel(model: ValidModel, target: ClusterTarget): ValidModel {
  const gw = target.gateway ?? clusterGateway;
  const env: Model = clone(model);
  for (const [provider, deployed] of Object.entries(target.issuers)) {
    const idp = env.identityProviders[provider];
    if (!idp) throw new Error(`issuers: "${provider}" is not an identity provider of the model`);
    idp.issuer = deployed.issuer;
    idp.jwksUri = deployed.jwksUri;
  }
  for (const [name, route] of Object.entries(env.routes)) {
    const provider = route.auth?.provider;
    if (provider !== undefined && !target.issuers[provider]) {
      throw new Error(
        `routes.${name}: identity provider "${provider}" has no issuer in this environment`,
      );
    }
    route.hosts = route.hosts.map((h) => {
      const mapped = target.hosts[h];
      if (mapped === undefined) {
        throw new Error(
          `hosts: no environment host for the model host "${h}" (routes.${name}.hosts)`,
        );
      }
      return mapped;
    });
  }
  const edges = Object.entries(env.workloads).filter(([, w]) => w.edge);
  if (edges.length > 1) {
    throw new Error(
      `workloads: a cluster has one gateway, the model has ${edges.length} edge workloads (${edges.map(([n]) => n).join(', ')})`,
    );
  }
  for (const [name, w] of Object.entries(env.workloads)) {
    if (w.edge) {
      w.namespace = gw.namespace;
      w.serviceAccount = gatewayServiceAccount(gw);
    } else {
      w.namespace = namespaceOf(model, name);
    }
  }
  const result = validateModel(env);
  if (!result.ok) {
    throw new Error(
      `the model as deployed in region ${target.region} is invalid:\n${formatErrors(result.errors)}`,
    );
  }
  return result.model;
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
  const env = environmentModel(model, target);
  const mesh = compileIstio(env, {
    region: target.region,
    rootNamespace: target.rootNamespace ?? systemNamespaces.istio,
    selectorLabel: labelKeys.app,
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
  return {
    model: env,
    mesh,
    gateway,
    routes,
    kafkaUsers,
    ...(realm ? { realm } : {}),
    target: gw,
  };
}
