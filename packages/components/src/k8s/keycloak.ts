import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { KEYCLOAK_LOG_LEVEL } from '@trellis/local/toolchain';
import type { Gateway, HttpRoute, KeycloakRealm } from '@trellis/policy';
import { meshNamespace } from './common.ts';
import type { OperatorSource } from './common.ts';
import { keycloakOperator } from './versions.ts';

const defaults = {
  /** Upstream's install guide applies the operator with `kubectl -n keycloak`; its RBAC expects it. */
  namespace: 'keycloak',
  instances: 2,
  resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
} as const;

/**
 * The Service the Keycloak operator makes for the `keycloak` CR: `<cr name>-service`, HTTP on `httpPort`
 * (8080 by default) when `http.httpEnabled` (keycloak.org/operator/advanced-configuration).
 */
export function keycloakService(namespace: string = defaults.namespace): {
  name: string;
  namespace: string;
  port: number;
} {
  return { name: 'keycloak-service', namespace, port: 8080 };
}

/** The in-cluster Keycloak (operator + Keycloak CR + realm import). */
export interface InClusterIdp {
  mode: 'keycloak';
  /** Public hostname of Keycloak, e.g. `auth.prod-us.example.com` (the issuer host). */
  hostname: string;
  /** Realm representation compiled from the model (`compileKeycloakRealm`); `realm` is its name. */
  realm: KeycloakRealm;
  /** PostgreSQL for Keycloak: host and database; credentials from Pulumi secrets. */
  database: {
    host: string;
    database: string;
    username: pulumi.Input<string>;
    password: pulumi.Input<string>;
  };
  /** @default 2 */
  instances?: number;
}

/** An external OIDC issuer (Okta, Cognito, ...): nothing is deployed, only its identity is recorded. */
export interface ExternalIdp {
  mode: 'external';
  /** Exact `iss` of the tokens, https. */
  issuer: string;
  /** JWKS endpoint, https. */
  jwksUri: string;
}

/** Arguments of {@link Keycloak}. */
export type KeycloakArgs = (InClusterIdp | ExternalIdp) & {
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** @default "keycloak" */
  namespace?: string;
  /** Whether the operator's manifests are applied here or preinstalled (common.ts). @default "install" */
  operators?: OperatorSource;
};

/**
 * The identity provider of an environment: Keycloak in the cluster (the official operator, pinned by
 * tag, and a `KeycloakRealmImport` of the compiled realm), or an external issuer. Either way it
 * publishes `issuer` and `jwksUri`, which the mesh and the API Gateway authorizer must both use.
 */
export class Keycloak extends pulumi.ComponentResource {
  /** Token issuer (`iss`). */
  public readonly issuer: pulumi.Output<string>;
  /** JWKS URI. */
  public readonly jwksUri: pulumi.Output<string>;

  constructor(name: string, args: KeycloakArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:Keycloak', name, {}, opts);
    if (args.mode === 'external') {
      for (const field of ['issuer', 'jwksUri'] as const) {
        if (!/^https:\/\/[^\s/]+/.test(args[field])) {
          throw new pulumi.ResourceError(
            `Keycloak ${name}: ${field} of an external issuer must be an https URL, got "${args[field]}"`,
            this,
          );
        }
      }
      this.issuer = pulumi.output(args.issuer);
      this.jwksUri = pulumi.output(args.jwksUri);
      this.registerOutputs({ issuer: this.issuer, jwksUri: this.jwksUri });
      return;
    }
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(args.hostname)) {
      throw new pulumi.ResourceError(
        `Keycloak ${name}: hostname must be a DNS name without scheme, got "${args.hostname}"`,
        this,
      );
    }
    if (!args.realm.realm) {
      throw new pulumi.ResourceError(
        `Keycloak ${name}: realm.realm (the realm name) is required`,
        this,
      );
    }
    const namespace = args.namespace ?? defaults.namespace;
    const dependsOn = args.dependsOn ?? [];
    const ns = meshNamespace(`${name}-ns`, namespace, 'sidecar', { parent: this, dependsOn });
    const operatorFiles =
      args.operators === 'preinstalled' ? [] : keycloakOperator.manifests(keycloakOperator.version);
    const manifests = operatorFiles.map(
      (file, i) =>
        new k8s.yaml.v2.ConfigFile(
          `${name}-operator-${i}`,
          { file },
          { parent: this, dependsOn: [ns] },
        ),
    );
    const db = new k8s.core.v1.Secret(
      `${name}-db`,
      {
        metadata: { name: 'keycloak-db', namespace: ns.metadata.name },
        type: 'Opaque',
        stringData: {
          username: pulumi.secret(args.database.username),
          password: pulumi.secret(args.database.password),
        },
      },
      { parent: this },
    );
    const keycloak = new k8s.apiextensions.CustomResource(
      `${name}-keycloak`,
      {
        apiVersion: 'k8s.keycloak.org/v2alpha1',
        kind: 'Keycloak',
        metadata: { name: 'keycloak', namespace: ns.metadata.name },
        spec: {
          instances: args.instances ?? defaults.instances,
          resources: defaults.resources,
          db: {
            vendor: 'postgres',
            host: args.database.host,
            database: args.database.database,
            usernameSecret: { name: db.metadata.name, key: 'username' },
            passwordSecret: { name: db.metadata.name, key: 'password' },
          },
          // TLS is the mesh's job inside the cluster (STRICT mTLS) and the gateway's at the edge.
          http: { httpEnabled: true },
          hostname: { hostname: `https://${args.hostname}` },
          proxy: { headers: 'xforwarded' },
          // The operator would make an Ingress by default; the Gateway API route of the platform's
          // gateway serves the issuer instead (Platform, `keycloak` HTTPRoute).
          ingress: { enabled: false },
          // The audit trail's login and token events: the realm sends them to the jboss-logging
          // listener (compileKeycloakRealm), which logs successes at DEBUG under
          // org.keycloak.events. A server option the CR has no field for goes in additionalOptions
          // as {name, value} (keycloak.org/operator/advanced-configuration).
          additionalOptions: [{ name: 'log-level', value: KEYCLOAK_LOG_LEVEL }],
        },
      },
      { parent: this, dependsOn: [...manifests, db] },
    );
    new k8s.apiextensions.CustomResource(
      `${name}-realm`,
      {
        apiVersion: 'k8s.keycloak.org/v2alpha1',
        kind: 'KeycloakRealmImport',
        metadata: { name: `realm-${args.realm.realm}`, namespace: ns.metadata.name },
        spec: { keycloakCRName: keycloak.metadata.name, realm: args.realm },
      },
      { parent: this, dependsOn: [keycloak] },
    );
    this.issuer = pulumi.output(`https://${args.hostname}/realms/${args.realm.realm}`);
    this.jwksUri = pulumi.output(
      `https://${args.hostname}/realms/${args.realm.realm}/protocol/openid-connect/certs`,
    );
    this.registerOutputs({ issuer: this.issuer, jwksUri: this.jwksUri });
  }
}

/**
 * The compiled edge plus the in-cluster Keycloak's public paths: one more HTTPS listener for the issuer
 * host and an HTTPRoute for `/realms/` (discovery, JWKS, token and login endpoints) and `/resources/`
 * (login page assets). The admin console (`/admin/`) is not routed. istiod fetches the JWKS and the API
 * Gateway authorizer the discovery document from this host, so it must be served where they can reach it.
 */
export function withIssuerRoute(
  gw: Gateway,
  routes: readonly HttpRoute[],
  hostname: string,
): { gateway: Gateway; routes: HttpRoute[] } {
  const first = gw.spec.listeners[0];
  if (!first) throw new Error('the compiled Gateway has no listener');
  const { namespace, labels } = gw.metadata;
  const svc = keycloakService();
  const gateway: Gateway = {
    ...gw,
    spec: {
      ...gw.spec,
      listeners: [...gw.spec.listeners, { ...first, name: 'https-issuer', hostname }],
    },
  };
  const route: HttpRoute = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'keycloak', namespace, labels },
    spec: {
      parentRefs: [{ name: gw.metadata.name, namespace }],
      hostnames: [hostname],
      rules: [
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/realms/' }, method: 'GET' },
            { path: { type: 'PathPrefix', value: '/realms/' }, method: 'POST' },
            { path: { type: 'PathPrefix', value: '/resources/' }, method: 'GET' },
          ],
          backendRefs: [{ name: svc.name, namespace: svc.namespace, port: svc.port }],
        },
      ],
    },
  };
  return { gateway, routes: [...routes, route] };
}
