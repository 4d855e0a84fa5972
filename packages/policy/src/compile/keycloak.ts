/**
 * Keycloak 26: a realm JSON for `kc.sh import` / `--import-realm` (RealmRepresentation).
 *
 * - Each model scope is an OpenID client scope (`include.in.token.scope=true`) with role scope mappings:
 *   Keycloak adds a client scope to a token only when the subject holds one of its mapped roles
 *   (server admin guide, "Client scopes permissions"), so roles decide who gets which scope.
 * - Each identity-provider role is a realm role; each agent gets a realm role `agent-<name>` held by its
 *   service account and mapped to exactly its scopes, and a confidential client with only the
 *   client-credentials grant and only its scopes as default client scopes.
 * - A realm that declares `clientScopes` gets none of Keycloak's built-in scopes (RealmManager only
 *   creates them when `clientScopes` is null), so `basic` (the `sub` claim, Keycloak ≥ 25) and `roles`
 *   are declared here, plus an audience scope that puts the model's audiences in `aud`.
 * Representation fields: https://www.keycloak.org/docs-api/latest/rest-api/index.html#RealmRepresentation
 */
import { keycloakAuditEvents } from './keycloak-events.ts';
import { own } from '../identity.ts';
import type { Agent, IdentityProvider } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
import type { ValidModel } from '../validate.ts';

/** `ProtocolMapperRepresentation`. */
export interface KeycloakProtocolMapper {
  name: string;
  protocol: 'openid-connect';
  protocolMapper: string;
  config: Record<string, string>;
}

/** `ClientScopeRepresentation`. */
export interface KeycloakClientScope {
  name: string;
  description: string;
  protocol: 'openid-connect';
  attributes: Record<string, string>;
  protocolMappers: KeycloakProtocolMapper[];
}

/** `ClientRepresentation` (the fields set here). */
export interface KeycloakClient {
  clientId: string;
  name: string;
  description: string;
  enabled: true;
  protocol: 'openid-connect';
  publicClient: boolean;
  clientAuthenticatorType?: 'client-secret';
  secret?: string;
  standardFlowEnabled: boolean;
  implicitFlowEnabled: false;
  directAccessGrantsEnabled: boolean;
  serviceAccountsEnabled: boolean;
  fullScopeAllowed: false;
  redirectUris: string[];
  webOrigins: string[];
  attributes: Record<string, string>;
  defaultClientScopes: string[];
  optionalClientScopes: string[];
}

/** `UserRepresentation` (the fields set here). */
export interface KeycloakUser {
  username: string;
  enabled: true;
  emailVerified?: boolean;
  email?: string;
  firstName?: string;
  lastName?: string;
  serviceAccountClientId?: string;
  credentials?: { type: 'password'; value: string; temporary: false }[];
  requiredActions: string[];
  realmRoles: string[];
}

/** `RealmRepresentation` (the fields set here). */
export interface KeycloakRealm {
  realm: string;
  enabled: true;
  sslRequired: 'all' | 'external' | 'none';
  registrationAllowed: false;
  bruteForceProtected: true;
  accessTokenLifespan: number;
  defaultSignatureAlgorithm: 'RS256';
  eventsEnabled: true;
  eventsListeners: string[];
  enabledEventTypes: string[];
  eventsExpiration: number;
  roles: { realm: { name: string; description: string }[] };
  clientScopes: KeycloakClientScope[];
  defaultDefaultClientScopes: string[];
  defaultOptionalClientScopes: string[];
  scopeMappings: { clientScope: string; roles: string[] }[];
  clients: KeycloakClient[];
  users: KeycloakUser[];
}

/** A demo user to create (local stack only). Passwords come from the caller, never from the model. */
export interface KeycloakDemoUser {
  username: string;
  password: string;
  /** Realm roles (from the provider's `roles`). */
  roles: string[];
  email?: string;
  firstName?: string;
  lastName?: string;
}

/** Options of `compileKeycloakRealm`. */
export interface KeycloakOptions {
  /** Which identity provider of the model this Keycloak realm implements. @default the only one, or the first whose issuer has /realms/ */
  provider?: string;
  /** Realm name. @default the segment after /realms/ in the issuer */
  realm?: string;
  /**
   * The client users log in through. The local stack uses the password grant for `./trellis token`.
   * @default { clientId: 'trellis-cli', directAccessGrants: true, redirectUris: [] }
   */
  userClient?: { clientId: string; directAccessGrants?: boolean; redirectUris?: string[] };
  /** Agent client secrets by agent name. Omit one to let Keycloak generate it. */
  agentSecrets?: Record<string, string>;
  /** Demo users (local stack). @default none */
  users?: KeycloakDemoUser[];
  /** `sslRequired`. @default 'external' (plain HTTP is allowed from loopback and private addresses only) */
  sslRequired?: 'all' | 'external' | 'none';
  /** Access token lifespan in seconds. @default 300 */
  accessTokenLifespan?: number;
}

const defaults = {
  accessTokenLifespan: 300,
  sslRequired: 'external',
  userClient: 'trellis-cli',
} as const;
const oidc = 'openid-connect' as const;

function mapper(
  name: string,
  protocolMapper: string,
  config: Record<string, string>,
): KeycloakProtocolMapper {
  return { name, protocol: oidc, protocolMapper, config };
}

/** The agent role name (held by the agent's service account). */
export function agentRole(agent: string): string {
  return `agent-${agent}`;
}

/** The provider the realm implements, and the realm's name. */
interface RealmOf {
  provider: string;
  idp: IdentityProvider;
  realm: string;
  /** The client scope that puts the provider's audiences in `aud`. */
  audienceScope: string;
  /** The model's agents that get their tokens from this provider. */
  agents: [string, Agent][];
}

function realmOf(model: ValidModel, opts: KeycloakOptions): RealmOf {
  const names = Object.keys(model.identityProviders);
  const provider =
    opts.provider ??
    (names.length === 1
      ? names[0]
      : names.find((n) => own(model.identityProviders, n)?.issuer.includes('/realms/')));
  const idp = provider !== undefined ? own(model.identityProviders, provider) : undefined;
  if (provider === undefined || !idp)
    throw new Error('compileKeycloakRealm: name the identity provider (opts.provider)');
  const realm = opts.realm ?? /\/realms\/([^/]+)/.exec(new URL(idp.issuer).pathname)?.[1];
  if (realm === undefined)
    throw new Error(
      `compileKeycloakRealm: issuer ${idp.issuer} has no /realms/<name>; set opts.realm`,
    );
  return {
    provider,
    idp,
    realm,
    audienceScope: `${provider}-audience`,
    agents: Object.entries(model.agents).filter(([, a]) => a.provider === provider),
  };
}

const hidden = { 'include.in.token.scope': 'false', 'display.on.consent.screen': 'false' };

/** `basic` and `roles` (Keycloak's built-ins, declared since the realm declares `clientScopes`). */
function builtinScopes(roleClaim: string): KeycloakClientScope[] {
  return [
    {
      name: 'basic',
      description: 'sub and auth_time claims (Keycloak built-in, declared explicitly)',
      protocol: oidc,
      attributes: { ...hidden },
      protocolMappers: [
        mapper('sub', 'oidc-sub-mapper', {
          'access.token.claim': 'true',
          'introspection.token.claim': 'true',
        }),
        mapper('auth_time', 'oidc-usersessionmodel-note-mapper', {
          'user.session.note': 'AUTH_TIME',
          'claim.name': 'auth_time',
          'jsonType.label': 'long',
          'id.token.claim': 'true',
          'access.token.claim': 'true',
          'introspection.token.claim': 'true',
        }),
      ],
    },
    {
      name: 'roles',
      description: `realm roles in ${roleClaim}`,
      protocol: oidc,
      attributes: { ...hidden },
      protocolMappers: [
        mapper('realm roles', 'oidc-usermodel-realm-role-mapper', {
          multivalued: 'true',
          'claim.name': roleClaim,
          'jsonType.label': 'String',
          'access.token.claim': 'true',
          'introspection.token.claim': 'true',
        }),
      ],
    },
  ];
}

/** The built-in scopes, the audience scope, and one scope per model scope. */
function clientScopes(r: RealmOf): KeycloakClientScope[] {
  const { idp } = r;
  return [
    ...builtinScopes(idp.roleClaim),
    {
      name: r.audienceScope,
      description: `audiences of ${r.provider}: ${idp.audiences.join(', ')}`,
      protocol: oidc,
      attributes: { ...hidden },
      protocolMappers: idp.audiences.map((a) =>
        mapper(`audience ${a}`, 'oidc-audience-mapper', {
          'included.custom.audience': a,
          'access.token.claim': 'true',
          'id.token.claim': 'false',
          'introspection.token.claim': 'true',
        }),
      ),
    },
    ...idp.scopes.map((s): KeycloakClientScope => ({
      name: s,
      description: `model scope ${s}`,
      protocol: oidc,
      attributes: { 'include.in.token.scope': 'true', 'display.on.consent.screen': 'false' },
      protocolMappers: [],
    })),
  ];
}

/** Which roles (user roles and agent roles) get each scope. */
function scopeMappings(r: RealmOf): KeycloakRealm['scopeMappings'] {
  return (
    r.idp.scopes
      .map((s) => ({
        clientScope: s,
        roles: [
          ...Object.entries(r.idp.roles)
            .filter(([, role]) => role.scopes.includes(s))
            .map(([name]) => name),
          ...r.agents.filter(([, a]) => a.scopes.includes(s)).map(([name]) => agentRole(name)),
        ].sort(),
      }))
      // A scope mapped to no role would be granted to everyone: leave such a scope unmapped to any client.
      .filter((m) => m.roles.length > 0)
  );
}

/** The public client users log in through; its scopes are the ones some role can be granted. */
function userClient(r: RealmOf, opts: KeycloakOptions, grantable: Set<string>): KeycloakClient {
  const c = opts.userClient ?? { clientId: defaults.userClient };
  return {
    clientId: c.clientId,
    name: 'Trellis users',
    description: 'Users log in here; scopes follow their roles',
    enabled: true,
    protocol: oidc,
    publicClient: true,
    standardFlowEnabled: (c.redirectUris ?? []).length > 0,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: c.directAccessGrants ?? true,
    serviceAccountsEnabled: false,
    fullScopeAllowed: false,
    redirectUris: c.redirectUris ?? [],
    webOrigins: [],
    attributes: { 'pkce.code.challenge.method': 'S256' },
    defaultClientScopes: [
      'basic',
      'roles',
      r.audienceScope,
      ...r.idp.scopes.filter((s) => grantable.has(s)),
    ],
    optionalClientScopes: [],
  };
}

/** A confidential client per agent: client credentials only, exactly its scopes. */
function agentClients(r: RealmOf, opts: KeycloakOptions): KeycloakClient[] {
  return r.agents.map(([name, a]): KeycloakClient => ({
    clientId: name,
    name,
    description: a.description ?? `agent ${name}`,
    enabled: true,
    protocol: oidc,
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    ...(opts.agentSecrets?.[name] !== undefined ? { secret: opts.agentSecrets[name] } : {}),
    standardFlowEnabled: false,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: false,
    serviceAccountsEnabled: true,
    fullScopeAllowed: false,
    redirectUris: [],
    webOrigins: [],
    attributes: {},
    defaultClientScopes: ['basic', r.audienceScope, ...a.scopes],
    optionalClientScopes: [],
  }));
}

/** The agents' service accounts and the demo users (whose roles must be the provider's). */
function users(r: RealmOf, opts: KeycloakOptions): KeycloakUser[] {
  const out: KeycloakUser[] = [
    ...r.agents.map(([name]): KeycloakUser => ({
      username: `service-account-${name}`,
      enabled: true,
      serviceAccountClientId: name,
      requiredActions: [],
      realmRoles: [agentRole(name)],
    })),
    ...(opts.users ?? []).map((u): KeycloakUser => ({
      username: u.username,
      enabled: true,
      emailVerified: true,
      // Keycloak 24+ user profiles require these before a password grant succeeds.
      email: u.email ?? `${u.username}@example.com`,
      firstName: u.firstName ?? u.username,
      lastName: u.lastName ?? 'Demo',
      credentials: [{ type: 'password', value: u.password, temporary: false }],
      requiredActions: [],
      realmRoles: [...u.roles],
    })),
  ];
  for (const u of opts.users ?? [])
    for (const role of u.roles)
      if (!Object.hasOwn(r.idp.roles, role))
        throw new Error(
          `compileKeycloakRealm: user ${u.username} has role '${role}', not declared in identityProviders.${r.provider}.roles`,
        );
  return out;
}

/** Compiles the realm for one identity provider of the model. */
export function compileKeycloakRealm(model: BoundModel, opts: KeycloakOptions = {}): KeycloakRealm {
  const r = realmOf(model, opts);
  const scopes = clientScopes(r);
  const mappings = scopeMappings(r);
  const grantable = new Set(mappings.map((m) => m.clientScope));
  const clients = [userClient(r, opts, grantable), ...agentClients(r, opts)];
  return {
    realm: r.realm,
    enabled: true,
    sslRequired: opts.sslRequired ?? defaults.sslRequired,
    registrationAllowed: false,
    bruteForceProtected: true,
    accessTokenLifespan: opts.accessTokenLifespan ?? defaults.accessTokenLifespan,
    defaultSignatureAlgorithm: 'RS256',
    eventsEnabled: true,
    eventsListeners: ['jboss-logging'],
    enabledEventTypes: [...keycloakAuditEvents],
    eventsExpiration: 86_400,
    roles: {
      realm: [
        ...Object.entries(r.idp.roles).map(([name, role]) => ({
          name,
          description: `scopes: ${role.scopes.join(' ')}`,
        })),
        ...r.agents.map(([name, a]) => ({
          name: agentRole(name),
          description: `agent ${name}: ${a.scopes.join(' ')}`,
        })),
      ],
    },
    clientScopes: scopes,
    defaultDefaultClientScopes: ['basic'],
    defaultOptionalClientScopes: [],
    scopeMappings: mappings,
    clients,
    users: users(r, opts),
  };
}
