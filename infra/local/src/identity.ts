/**
 * The identity layer of the local stack: Keycloak with the realm compiled from the model, demo users
 * and the model's agents, every password and client secret generated as a Pulumi secret.
 *
 * Call order (infra/local/index.ts): `deployData(ctx)`, then `deployIdentity(ctx)`, then
 * `deployMesh(ctx, data, identity)`. Keycloak needs nothing from the data layer, so it starts beside
 * Cassandra and Kafka. Which provider it serves, and at which URL, `bind` decided (`ctx.model`).
 */
import * as pulumi from '@pulumi/pulumi';
import type { LocalDataMetricsFront } from '@trellis/components/local/data-metrics';
import { LocalKeycloak } from '@trellis/components/local/keycloak';
import type { PodLaunch } from '@trellis/local/pods';
import {
  type BoundModel,
  type EnvoyEndpoint,
  type IdentityProvider,
  type IdentityProviderBinding,
} from '@trellis/policy';
import type { StackContext } from './context.ts';
import { deployDataMetrics, planKeycloakMetrics } from './data-metrics.ts';

/** A demo user: who may do what, by scope. The roles that grant it are found in the model. */
export interface DemoUser {
  username: string;
  scopes: string[];
}

/** The demo users of the local stack. */
export const demoUsers: readonly DemoUser[] = [
  { username: 'alice', scopes: ['orders:read', 'orders:write'] },
  { username: 'bob', scopes: ['orders:read'] },
];

/**
 * The fewest roles of `idp` whose scopes together are exactly `scopes` (roles granting any other
 * scope are never used). Throws naming the user when the model has no such roles.
 */
export function rolesForScopes(idp: IdentityProvider, provider: string, user: DemoUser): string[] {
  const wanted = new Set(user.scopes);
  const usable = Object.entries(idp.roles)
    .filter(([, r]) => r.scopes.every((s) => wanted.has(s)))
    .sort(([a, ra], [b, rb]) => rb.scopes.length - ra.scopes.length || a.localeCompare(b));
  const chosen: string[] = [];
  const covered = new Set<string>();
  for (const [role, r] of usable) {
    if (r.scopes.some((s) => !covered.has(s))) {
      chosen.push(role);
      for (const s of r.scopes) covered.add(s);
    }
  }
  const missing = user.scopes.filter((s) => !covered.has(s));
  if (missing.length > 0)
    throw new Error(
      `demo user ${user.username}: no role of identityProviders.${provider} grants ${missing.join(', ')} without granting more (roles: ${Object.keys(idp.roles).join(', ') || 'none'})`,
    );
  return chosen.sort();
}

/** Credentials `./trellis token` reads from the stack output `principals` (a Pulumi secret). */
export interface PrincipalsOutput {
  tokenUrl: string;
  /** The public client of the password grant. */
  cliClientId: string;
  /** username → password. */
  users: Record<string, string>;
  /** agent (client id) → client secret. */
  agents: Record<string, string>;
}

/**
 * The provider the stack's Keycloak serves, as bound (`environment.keycloak`). Throws when the
 * model was bound without a Keycloak.
 */
export function servedProvider(model: BoundModel): {
  name: string;
  keycloak: NonNullable<IdentityProviderBinding['keycloak']>;
} {
  for (const [name, p] of Object.entries(model.binding.identityProviders))
    if (p.keycloak) return { name, keycloak: p.keycloak };
  throw new Error(
    'identityProviders: the stack runs Keycloak, but the model was bound without environment.keycloak',
  );
}

/** What {@link deployIdentity} returns. */
export interface IdentityLayer {
  provider: string;
  realm: string;
  /** `<keycloak base URL>/realms/<realm>`: the `iss` the sidecars require. */
  issuer: string;
  tokenUrl: string;
  jwksUri: string;
  /** The admin console, `<keycloak base URL>/admin/`. */
  adminConsoleUrl: string;
  /**
   * Health on the management port, `https://127.0.0.1:<keycloakManagement>/health/ready`: with
   * pods, on the keycloak pod's own loopback (from inside the pod only).
   */
  healthUrl: string;
  /** Who can get a token, and with which scopes (no secrets). */
  demo: {
    users: { username: string; roles: string[]; scopes: string[] }[];
    agents: { clientId: string; scopes: string[] }[];
  };
  /** Secret: what `./trellis token` needs. Export it as the stack output `principals`. */
  principals: pulumi.Output<PrincipalsOutput>;
  /** Secret: the master realm's bootstrap admin. */
  admin: pulumi.Output<{ username: string; password: string }>;
  keycloak: LocalKeycloak;
  /**
   * Keycloak's metrics front (ADR 0024), when the model has a metrics scraper: an Envoy in
   * Keycloak's pod (or on the host's loopback without pods) that admits only the scraper, reading
   * `/metrics` from the management interface on Keycloak's own loopback over TLS.
   */
  metrics?: { front: LocalDataMetricsFront; target: EnvoyEndpoint };
  /** Depend on these to start after Keycloak serves the realm. */
  resources: pulumi.Resource[];
}

/**
 * Keycloak's pod, where `bind` put Keycloak in one (`environment.pods.servers.keycloak`): its
 * launch, its address, and the directory of the host's relay to it.
 */
function keycloakPod(
  ctx: StackContext,
  address: string | undefined,
): { launch: pulumi.Output<PodLaunch>; address: string; relayDir: string } | undefined {
  const pods = ctx.pods;
  if (address === undefined) return undefined;
  if (pods === undefined || !Object.hasOwn(pods.slots, 'keycloak'))
    throw new Error(
      'identityProviders: Keycloak was bound to a pod, but the stack makes no keycloak pod',
    );
  return {
    launch: pods.resource.members.apply((m) => {
      const p = m.keycloak;
      if (p === undefined) throw new Error('pods: keycloak was not created');
      return p.launch;
    }),
    address,
    relayDir: ctx.runDir('keycloak-relay'),
  };
}

/** Keycloak for the stack, with the realm from the model (see the module comment for the order). */
export function deployIdentity(
  ctx: StackContext,
  opts?: pulumi.ComponentResourceOptions,
): IdentityLayer {
  const model = ctx.model;
  const { name: provider, keycloak: served } = servedProvider(model);
  const idp = model.identityProviders[provider] as IdentityProvider;
  const users = demoUsers.map((u) => ({
    username: u.username,
    roles: rolesForScopes(idp, provider, u),
    scopes: [...u.scopes].sort(),
  }));
  const pod = keycloakPod(ctx, served.podAddress);
  const keycloak = new LocalKeycloak(
    'keycloak',
    {
      model,
      provider,
      dir: ctx.runDir('keycloak'),
      ca: ctx.ca,
      certDir: ctx.pkiDir('keycloak'),
      certValidHours: ctx.certValidHours,
      // Rotated with every workload certificate; Keycloak re-reads its files each minute.
      rotation: ctx.rotation,
      ports: { https: ctx.ports.keycloakHttp, management: ctx.ports.keycloakManagement },
      hostname: served.baseUrl,
      users: users.map(({ username, roles }) => ({ username, roles })),
      ...(pod !== undefined ? { pod } : {}),
    },
    // Its pod must exist first, and go last.
    pod !== undefined && ctx.pods
      ? pulumi.mergeOptions(opts, { dependsOn: [ctx.pods.resource] })
      : opts,
  );
  const metricsPlan = planKeycloakMetrics(model, ctx.ports, pod?.address);
  const metrics =
    metricsPlan === undefined
      ? undefined
      : deployDataMetrics(
          ctx,
          [metricsPlan],
          pod !== undefined ? { keycloak: { launch: pod.launch, address: pod.address } } : {},
          pulumi.mergeOptions(opts, { dependsOn: [keycloak] }),
        );
  const front = metrics?.fronts[0];
  const principals = pulumi.secret(
    pulumi
      .all([keycloak.userPasswords, keycloak.agentSecrets])
      .apply(([pw, cs]): PrincipalsOutput => ({
        tokenUrl: keycloak.tokenUrl,
        cliClientId: keycloak.cliClientId,
        users: pw,
        agents: cs,
      })),
  );
  return {
    provider,
    realm: served.realm,
    issuer: keycloak.issuer,
    tokenUrl: keycloak.tokenUrl,
    jwksUri: keycloak.jwksUri,
    adminConsoleUrl: `${served.baseUrl}/admin/`,
    healthUrl: `${keycloak.managementUrl}/health/ready`,
    demo: {
      users,
      agents: Object.entries(keycloak.agents).map(([clientId, scopes]) => ({ clientId, scopes })),
    },
    principals,
    admin: pulumi.secret(
      keycloak.adminPassword.apply((password) => ({ username: keycloak.adminUsername, password })),
    ),
    keycloak,
    ...(front !== undefined ? { metrics: { front, target: front.target } } : {}),
    resources: [keycloak],
  };
}
