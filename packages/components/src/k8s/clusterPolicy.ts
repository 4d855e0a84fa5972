import { callersOf, namespaceOf, pathTemplateRegex } from '@trellis/policy';
import type { Model } from '@trellis/policy';
import type { K8sObject } from './common.ts';
import type { KafkaAcl, KafkaUserSpec } from './kafka.ts';
import type { CompiledPolicy } from './platform.ts';

/** Where the policy lands in one cluster. */
export interface ClusterPolicyTarget {
  /** Region key of the model. Policy is region-independent; only names that must differ carry it. */
  region: string;
  /** Namespace of the NGINX gateway: the mesh identity of the edge (the model's edge workloads). */
  gatewayNamespace: string;
  /** Name of the Gateway resource that HTTPRoutes attach to. */
  gatewayName: string;
  /** Issuer and JWKS of each identity provider of the model, as deployed in this environment. */
  issuers: Record<string, { issuer: string; jwksUri: string }>;
}

const appLabel = (model: Model, workload: string): string =>
  model.workloads[workload]?.serviceAccount ?? workload;

const principal = (model: Model, workload: string): string =>
  `${model.trustDomain}/ns/${namespaceOf(model, workload)}/sa/${appLabel(model, workload)}`;

/** Istio path glob for a model path template (`/orders/{id}` → `/orders/*`). */
function istioPath(template: string): string {
  const i = template.indexOf('{');
  return i < 0 ? template : `${template.slice(0, i)}*`;
}

/**
 * Interim cluster compiler: the model → Istio, Gateway API, Strimzi and Keycloak artefacts for one
 * cluster. It uses only the model helpers of `@trellis/policy`; when that package's compilers
 * (`compileIstio`, `compileGatewayApi`, `compileKafkaAcls`, `compileKeycloakRealm`) land, the infra
 * programs switch to them and this module goes.
 */
export function compileClusterPolicy(model: Model, target: ClusterPolicyTarget): CompiledPolicy {
  const mesh: K8sObject[] = [];
  const routes: K8sObject[] = [];
  const apps = Object.entries(model.workloads).filter(([, w]) => !w.edge);
  const edge = new Set(
    Object.entries(model.workloads)
      .filter(([, w]) => w.edge)
      .map(([n]) => n),
  );
  for (const ns of [...new Set(apps.map(([w]) => namespaceOf(model, w)))].sort()) {
    mesh.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: ns },
      spec: { mtls: { mode: 'STRICT' } },
    });
  }
  for (const [workload] of apps) {
    const ns = namespaceOf(model, workload);
    const selector = { matchLabels: { app: appLabel(model, workload) } };
    const rules: Record<string, unknown>[] = [];
    const meshCallers = callersOf(model, workload).filter((c) => !edge.has(c));
    if (meshCallers.length > 0) {
      rules.push({
        from: [{ source: { principals: meshCallers.map((c) => principal(model, c)).sort() } }],
      });
    }
    const edgeRoutes = Object.entries(model.routes).filter(([, r]) => r.backend === workload);
    const providers = new Set<string>();
    for (const [, route] of edgeRoutes) {
      const provider = route.auth?.provider;
      const issuer = provider ? target.issuers[provider]?.issuer : undefined;
      if (!provider || !issuer) {
        throw new Error(
          `routes: route to ${workload} has no deployed issuer for provider "${provider}"`,
        );
      }
      providers.add(provider);
      rules.push({
        from: [
          { source: { namespaces: [target.gatewayNamespace], requestPrincipals: [`${issuer}/*`] } },
        ],
        to: [{ operation: { methods: [route.method], paths: [istioPath(route.path)] } }],
      });
    }
    // An ALLOW policy with no rules denies everything: a workload nobody calls is closed.
    mesh.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: `${appLabel(model, workload)}-allow`, namespace: ns },
      spec: { selector, action: 'ALLOW', rules },
    });
    if (providers.size > 0) {
      mesh.push({
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: { name: `${appLabel(model, workload)}-jwt`, namespace: ns },
        spec: {
          selector,
          jwtRules: [...providers].sort().map((p) => ({
            issuer: target.issuers[p]?.issuer,
            jwksUri: target.issuers[p]?.jwksUri,
            audiences: model.identityProviders[p]?.audiences ?? [],
            forwardOriginalToken: true,
          })),
        },
      });
    }
  }
  for (const [name, route] of Object.entries(model.routes).sort(([a], [b]) => a.localeCompare(b))) {
    const port = model.workloads[route.backend]?.ports.find((p) => p.name === route.port);
    const literal = !route.path.includes('{');
    routes.push({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      // In the backend's namespace, so no ReferenceGrant is needed for the backendRef.
      metadata: { name, namespace: namespaceOf(model, route.backend) },
      spec: {
        parentRefs: [{ name: target.gatewayName, namespace: target.gatewayNamespace }],
        hostnames: route.hosts,
        rules: [
          {
            matches: [
              {
                method: route.method,
                path: literal
                  ? { type: 'Exact', value: route.path }
                  : { type: 'RegularExpression', value: pathTemplateRegex(route.path) },
              },
            ],
            backendRefs: [{ name: appLabel(model, route.backend), port: port?.port }],
          },
        ],
      },
    });
  }
  const users = new Map<string, KafkaAcl[]>();
  const add = (user: string, acl: KafkaAcl): void => {
    users.set(user, [...(users.get(user) ?? []), acl]);
  };
  for (const [topic, t] of Object.entries(model.kafka.topics)) {
    const patternType = t.pattern === 'prefixed' ? 'prefix' : 'literal';
    for (const p of t.producers) {
      add(p, {
        resource: { type: 'topic', name: topic, patternType },
        operations: ['Write', 'Describe'],
      });
    }
    for (const c of t.consumers) {
      add(c.identity, {
        resource: { type: 'topic', name: topic, patternType },
        operations: ['Read', 'Describe'],
      });
      add(c.identity, {
        resource: {
          type: 'group',
          name: c.group,
          patternType: c.groupPattern === 'prefixed' ? 'prefix' : 'literal',
        },
        operations: ['Read'],
      });
    }
  }
  const kafkaUsers: KafkaUserSpec[] = [...users.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, acls]) => ({ name, acls }));
  const kc = Object.entries(target.issuers).find(([p]) => p === 'keycloak');
  const realmName = kc ? /\/realms\/([^/]+)/.exec(kc[1].issuer)?.[1] : undefined;
  const provider = model.identityProviders.keycloak;
  const realm =
    realmName && provider
      ? {
          realm: realmName,
          enabled: true,
          sslRequired: 'all',
          clientScopes: provider.scopes.map((s) => ({ name: s, protocol: 'openid-connect' })),
          roles: { realm: Object.keys(provider.roles).map((r) => ({ name: r })) },
          clients: [
            ...provider.audiences.map((aud) => ({
              clientId: aud,
              bearerOnly: true,
              enabled: true,
            })),
            ...Object.entries(model.agents).map(([agent, a]) => ({
              clientId: agent,
              enabled: true,
              publicClient: false,
              serviceAccountsEnabled: true,
              standardFlowEnabled: false,
              defaultClientScopes: [],
              optionalClientScopes: a.scopes,
            })),
          ],
        }
      : undefined;
  return { mesh, routes, kafkaUsers, ...(realm ? { realm } : {}) };
}
