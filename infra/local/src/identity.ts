/**
 * The identity layer of the local stack: Keycloak with the realm compiled from the model, demo users
 * and the model's agents, every password and client secret generated as a Pulumi secret.
 *
 * Call order (infra/local/index.ts): `deployData(ctx)`, then `deployIdentity(ctx)`, then
 * `deployMesh(ctx, data, identity)`. Keycloak needs nothing from the data layer, so it starts beside
 * Cassandra and Kafka.
 */
import * as pulumi from '@pulumi/pulumi';
import { LocalKeycloak } from '@trellis/components/local/keycloak';
import {
  formatErrors,
  validateModel,
  type IdentityProvider,
  type ValidModel,
} from '@trellis/policy';
import type { StackContext } from './context.ts';

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

const loopbackHosts = new Set(['localhost', '127.0.0.1']);

/**
 * The identity provider the local Keycloak implements: the first (by name) whose issuer is a
 * Keycloak realm on loopback (`https://localhost:<port>/realms/<realm>`). Throws naming what is
 * missing.
 */
export function localProvider(model: ValidModel): { name: string; realm: string } {
  for (const name of Object.keys(model.identityProviders).sort()) {
    const idp = model.identityProviders[name] as IdentityProvider;
    const u = new URL(idp.issuer);
    const realm = /^\/realms\/([^/]+)$/.exec(u.pathname)?.[1];
    if (loopbackHosts.has(u.hostname) && realm !== undefined) return { name, realm };
  }
  throw new Error(
    'identityProviders: none is served by the local Keycloak; declare one whose issuer is ' +
      'https://localhost:<port>/realms/<realm> (have: ' +
      (Object.entries(model.identityProviders)
        .map(([n, p]) => `${n} ${p.issuer}`)
        .join(', ') || 'none') +
      ')',
  );
}

/**
 * The model with the local provider moved to this stack's Keycloak, whose public base URL (scheme,
 * host and port) is `keycloakUrl`: issuer `<keycloakUrl>/realms/<realm>` and the JWKS under it. For
 * stack `local` (`https://localhost:8180`) this is the model as written; another stack (the e2e one)
 * gets its own port, and the sidecars then expect exactly the issuer its Keycloak puts in tokens.
 */
export function localIdentityModel(model: ValidModel, keycloakUrl: string): ValidModel {
  const { name, realm } = localProvider(model);
  const idp = model.identityProviders[name] as IdentityProvider;
  const issuer = `${new URL(keycloakUrl).origin}/realms/${realm}`;
  const rehomed = {
    ...model,
    identityProviders: {
      ...model.identityProviders,
      [name]: { ...idp, issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` },
    },
  };
  const r = validateModel(rehomed);
  if (!r.ok)
    throw new Error(
      `identityProviders.${name}: moving the issuer to ${issuer} made the model invalid:\n${formatErrors(r.errors)}`,
    );
  return r.model;
}

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

/** What {@link deployIdentity} returns. */
export interface IdentityLayer {
  /** The model with the local provider at this stack's Keycloak: compile the sidecars from it. */
  model: ValidModel;
  provider: string;
  realm: string;
  /** `https://localhost:<keycloakHttp>/realms/<realm>`: the `iss` the sidecars require. */
  issuer: string;
  tokenUrl: string;
  jwksUri: string;
  /** The admin console, `https://localhost:<keycloakHttp>/admin/`. */
  adminConsoleUrl: string;
  /** Health on the management port, `https://127.0.0.1:<keycloakManagement>/health/ready`. */
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
  /** Depend on these to start after Keycloak serves the realm. */
  resources: pulumi.Resource[];
}

/** Keycloak for the stack, with the realm from the model (see the module comment for the order). */
export function deployIdentity(
  ctx: StackContext,
  opts?: pulumi.ComponentResourceOptions,
): IdentityLayer {
  const port = ctx.ports.keycloakHttp;
  // The one place the scheme is chosen: Keycloak serves TLS only, with a Mesh CA certificate.
  const keycloakUrl = `https://localhost:${port}`;
  const model = localIdentityModel(ctx.model, keycloakUrl);
  const { name: provider, realm } = localProvider(model);
  const idp = model.identityProviders[provider] as IdentityProvider;
  const users = demoUsers.map((u) => ({
    username: u.username,
    roles: rolesForScopes(idp, provider, u),
    scopes: [...u.scopes].sort(),
  }));
  const keycloak = new LocalKeycloak(
    'keycloak',
    {
      model,
      provider,
      dir: ctx.runDir('keycloak'),
      ca: ctx.ca,
      certDir: ctx.pkiDir('keycloak'),
      certValidHours: ctx.certValidHours,
      ports: { https: port, management: ctx.ports.keycloakManagement },
      hostname: keycloakUrl,
      users: users.map(({ username, roles }) => ({ username, roles })),
    },
    opts,
  );
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
    model,
    provider,
    realm,
    issuer: keycloak.issuer,
    tokenUrl: keycloak.tokenUrl,
    jwksUri: keycloak.jwksUri,
    adminConsoleUrl: `${keycloakUrl}/admin/`,
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
    resources: [keycloak],
  };
}
