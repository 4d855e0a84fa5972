/**
 * Unit tests of the compilers on the reference model: the security-relevant fields of each artefact,
 * and, where upstream publishes TypeScript types (Keycloak representations), a compile-time check that
 * every emitted field exists upstream (k6 options are checked where they are rendered, in load-tests).
 */
import type ClientRepresentation from '@keycloak/keycloak-admin-client/lib/defs/clientRepresentation.js';
import type ClientScopeRepresentation from '@keycloak/keycloak-admin-client/lib/defs/clientScopeRepresentation.js';
import type ProtocolMapperRepresentation from '@keycloak/keycloak-admin-client/lib/defs/protocolMapperRepresentation.js';
import type RealmRepresentation from '@keycloak/keycloak-admin-client/lib/defs/realmRepresentation.js';
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compileCassandra,
  compileEnvoy,
  compileK6Thresholds,
  compileKafkaAcls,
  compileKeycloakRealm,
  compileNginx,
  bindOrThrow,
  envoyOptions,
  httpFilterOrder,
  kafkaAclCliArgs,
  parseModel,
  renderTarget,
  renderTargets,
  routeStatPrefix,
} from '../src/index.ts';
import type {
  EnvoyListener,
  HttpFilter,
  KeycloakClient,
  KeycloakClientScope,
  KeycloakProtocolMapper,
  KeycloakRealm,
  KeycloakUser,
} from '../src/index.ts';
import { modelArb } from './arbitraries.ts';
import { example as bindExample, referenceBound, referenceText } from './fixtures.ts';
import type { NoUnknownFields } from './upstreamTypes.ts';

// Keycloak: RealmRepresentation types clientScopes and scopeMappings as any[], so those parts are checked
// against their own representation types.
const keycloakFields: [
  NoUnknownFields<KeycloakRealm, RealmRepresentation>,
  NoUnknownFields<KeycloakClient, ClientRepresentation>,
  NoUnknownFields<KeycloakClientScope, ClientScopeRepresentation>,
  NoUnknownFields<KeycloakProtocolMapper, ProtocolMapperRepresentation>,
  NoUnknownFields<KeycloakUser, UserRepresentation>,
] = [true, true, true, true, true];

const model = referenceBound();
/** The reference model in the example plan of `policy render`, files under /srv. */
const example = bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan');

describe('Envoy', () => {
  const opts = {
    workload: 'orders-api',
    inbound: { http: 15080 },
    app: { http: { address: '127.0.0.1', port: 18080 } },
    outbound: {
      cassandra: { address: '127.0.0.1', port: 9142, listenPort: 19042 },
      kafka: { address: 'localhost', port: 9093, listenPort: 19093 },
    },
    adminPort: 15000,
    sds: {
      dir: '/run/trellis/orders-api/sds',
      certChain: '/run/trellis/orders-api/certs/svid.pem',
      privateKey: '/run/trellis/orders-api/certs/key.pem',
      trustBundle: '/run/trellis/ca/bundle.pem',
    },
  };
  const { bootstrap, sdsFiles } = compileEnvoy(model, opts);
  const inbound = bootstrap.static_resources.listeners.find(
    (l) => l.name === 'inbound_http',
  ) as EnvoyListener;
  const hcmFilter = inbound.filter_chains[0]?.filters[0];
  const hcm =
    hcmFilter?.name === 'envoy.filters.network.http_connection_manager'
      ? hcmFilter.typed_config
      : undefined;
  const filter = <N extends HttpFilter['name']>(name: N) =>
    hcm?.http_filters.find((f): f is Extract<HttpFilter, { name: N }> => f.name === name);

  it('binds admin and listeners to the given loopback ports', () => {
    expect(bootstrap.admin?.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 15000,
    });
    expect(
      bootstrap.static_resources.listeners.map((l) => [
        l.name,
        l.address.socket_address.port_value,
      ]),
    ).toEqual([
      ['outbound_cassandra', 19042],
      ['outbound_kafka', 19093],
      ['inbound_http', 15080],
    ]);
  });

  it('requires client certificates and matches the caller SAN', () => {
    const ts = inbound.filter_chains[0]?.transport_socket?.typed_config;
    expect(ts && 'require_client_certificate' in ts && ts.require_client_certificate).toBe(true);
    expect(
      ts &&
        'require_client_certificate' in ts &&
        ts.common_tls_context.combined_validation_context.default_validation_context,
    ).toEqual({
      match_typed_subject_alt_names: [
        { san_type: 'URI', matcher: { exact: 'spiffe://trellis.local/ns/trellis/sa/ingress' } },
      ],
    });
  });

  it('configures jwt_authn with issuer, audiences, require_expiration and one catch-all rule', () => {
    const jwt = filter('envoy.filters.http.jwt_authn')?.typed_config;
    expect(jwt?.providers['keycloak']).toMatchObject({
      issuer: 'https://localhost:8180/realms/trellis',
      audiences: ['trellis-api'],
      require_expiration: true,
      remote_jwks: {
        http_uri: {
          uri: 'https://localhost:8180/realms/trellis/protocol/openid-connect/certs',
          cluster: 'jwks_keycloak',
        },
        // Keys fetched before the listener opens and refreshed in the background: no request
        // waits for a JWKS fetch.
        async_fetch: { fast_listener: false },
      },
    });
    expect(jwt?.rules).toEqual([
      { match: { prefix: '/' }, requires: { provider_name: 'keycloak' } },
    ]);
    expect(hcm?.http_filters.map((f) => f.name)).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac',
      'envoy.filters.http.local_ratelimit',
      'envoy.filters.http.router',
    ]);
  });

  it('caches verified tokens per provider, keeping every per-request check (ADR 0019)', () => {
    const jwt = filter('envoy.filters.http.jwt_authn')?.typed_config;
    const provider = jwt?.providers['keycloak'];
    expect(provider?.jwt_cache_config).toEqual({ jwt_cache_size: 100 });
    // A cache hit still checks issuer, exp and audiences: they stay configured on the provider.
    expect(provider).toMatchObject({
      issuer: 'https://localhost:8180/realms/trellis',
      audiences: ['trellis-api'],
      require_expiration: true,
    });
  });

  it('sets no idle timers a sidecar does not need: stats flush on admin, 1 s watchdogs that kill nothing', () => {
    expect(bootstrap.stats_flush_on_admin).toBe(true);
    // stats_flush_interval is the other branch of Envoy's `stats_flush` oneof: never both.
    expect(bootstrap).not.toHaveProperty('stats_flush_interval');
    expect(bootstrap.watchdogs).toEqual({
      main_thread_watchdog: { miss_timeout: '1s', megamiss_timeout: '5s' },
      worker_watchdog: { miss_timeout: '1s', megamiss_timeout: '5s' },
    });
    const edge = compileEnvoy(example, envoyOptions(example, 'ingress')).bootstrap;
    expect(edge.stats_flush_on_admin).toBe(true);
    expect(edge.watchdogs).toEqual(bootstrap.watchdogs);
  });

  it('orders every HTTP filter chain by the one explicit list', () => {
    // Authenticate, then authorize on the verified payload, then count, then (a test stack's fault
    // delay, ADR 0025) route (terminal).
    expect(httpFilterOrder).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac',
      'envoy.filters.http.local_ratelimit',
      'envoy.filters.http.fault',
      'envoy.filters.http.router',
    ]);
    const chains = (plain: typeof model) => {
      const m = bindOrThrow(plain, { kind: 'example', baseDir: '/srv' }, 'example plan');
      return Object.keys(m.workloads).flatMap((w) =>
        compileEnvoy(m, envoyOptions(m, w))
          .bootstrap.static_resources.listeners.flatMap((l) =>
            l.filter_chains.flatMap((c) => c.filters),
          )
          .flatMap((f) =>
            f.name === 'envoy.filters.network.http_connection_manager'
              ? [f.typed_config.http_filters.map((h) => h.name)]
              : [],
          ),
      );
    };
    const ordered = (chain: string[]) => {
      expect(chain.at(-1)).toBe('envoy.filters.http.router');
      // A subsequence of the list: indices strictly increase.
      const idx = chain.map((n) => (httpFilterOrder as readonly string[]).indexOf(n));
      expect(idx.every((i, k) => i >= 0 && (k === 0 || i > (idx[k - 1] ?? -1)))).toBe(true);
    };
    expect(chains(model).length).toBeGreaterThan(0);
    chains(model).forEach(ordered);
    fc.assert(
      fc.property(modelArb, (m) => chains(bindExample(m)).forEach(ordered)),
      { numRuns: 100 },
    );
  });

  it('fetches an https JWKS over TLS, checking the roots and the jwksUri host name', () => {
    const jwksCluster = (b: typeof bootstrap) =>
      b.static_resources.clusters.find((c) => c.name === 'jwks_keycloak');
    // The reference model's jwksUri is https://localhost:8180/...: system roots, SNI and DNS SAN.
    expect(jwksCluster(bootstrap)?.transport_socket?.typed_config).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      sni: 'localhost',
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' },
          match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'localhost' } }],
        },
      },
    });
    // A stack's own CA, dialled on loopback: the name checked is still the jwksUri's.
    const local = compileEnvoy(model, {
      ...opts,
      jwks: { keycloak: { address: '127.0.0.1', port: 28180, caFile: '/pki/bundle.pem' } },
    }).bootstrap;
    const c = jwksCluster(local);
    expect(c?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 28180 },
    });
    expect(c?.transport_socket?.typed_config).toMatchObject({
      sni: 'localhost',
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: '/pki/bundle.pem' },
          match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'localhost' } }],
        },
      },
    });
    // An IP literal is matched as an IP SAN and sent without SNI (RFC 6066 §3).
    const byIp = parseModel(
      referenceText.split('https://localhost:8180').join('https://127.0.0.1:8180'),
    );
    if (!byIp.ok) throw new Error('variant invalid');
    const ipTls = jwksCluster(compileEnvoy(bindExample(byIp.model), opts).bootstrap)
      ?.transport_socket?.typed_config;
    expect(ipTls).not.toHaveProperty('sni');
    expect(ipTls?.common_tls_context).toMatchObject({
      validation_context: {
        match_typed_subject_alt_names: [
          { san_type: 'IP_ADDRESS', matcher: { exact: '127.0.0.1' } },
        ],
      },
    });
    // Plaintext to an https jwksUri would be a silent downgrade.
    expect(() =>
      compileEnvoy(model, {
        ...opts,
        jwks: { keycloak: { address: '127.0.0.1', port: 8180, tls: false } },
      }),
    ).toThrow(
      'compileEnvoy: jwks.keycloak.tls is false, but identityProviders.keycloak.jwksUri is https (https://localhost:8180/realms/trellis/protocol/openid-connect/certs)',
    );
  });

  it('answers a wrong audience with 401 and the invalid_token challenge, not jwt_authn 403', () => {
    const jwt = filter('envoy.filters.http.jwt_authn')?.typed_config;
    expect(jwt?.providers['keycloak']?.failed_status_in_metadata).toBe('jwt_failure');
    expect(hcm?.local_reply_config).toEqual({
      mappers: [
        {
          filter: {
            and_filter: {
              filters: [
                {
                  status_code_filter: {
                    comparison: {
                      op: 'EQ',
                      value: { default_value: 403, runtime_key: 'trellis.jwt_audience_status' },
                    },
                  },
                },
                {
                  metadata_filter: {
                    matcher: {
                      filter: 'envoy.filters.http.jwt_authn',
                      path: [{ key: 'jwt_failure' }, { key: 'message' }],
                      value: { string_match: { exact: 'Audiences in Jwt are not allowed' } },
                    },
                    match_if_key_not_found: false,
                  },
                },
              ],
            },
          },
          status_code: 401,
          headers_to_add: [
            {
              header: { key: 'www-authenticate', value: 'Bearer error="invalid_token"' },
              append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
            },
          ],
        },
      ],
    });
  });

  it('has one RBAC policy per route, on the SPIFFE principal and the token scopes', () => {
    const rbac = filter('envoy.filters.http.rbac')?.typed_config.rules;
    expect(rbac?.action).toBe('ALLOW');
    expect(Object.keys(rbac?.policies ?? {})).toEqual(['route_create-order', 'route_get-order']);
    expect(JSON.stringify(rbac?.policies['route_create-order'])).toContain(
      '"principal_name":{"exact":"spiffe://trellis.local/ns/trellis/sa/ingress"}',
    );
    expect(JSON.stringify(rbac?.policies['route_create-order'])).toContain('orders:write');
  });

  it('rate-limits each route with a token bucket', () => {
    const routes = hcm?.route_config.virtual_hosts[0]?.routes ?? [];
    expect(
      routes.find((r) => r.name === 'create-order')?.typed_per_filter_config?.[
        'envoy.filters.http.local_ratelimit'
      ].token_bucket,
    ).toEqual({
      max_tokens: 900,
      tokens_per_fill: 600,
      fill_interval: '1s',
    });
  });

  it('originates TLS to Cassandra and Kafka with the SVID, expecting their SPIFFE IDs', () => {
    const c = bootstrap.static_resources.clusters.find((x) => x.name === 'outbound_kafka');
    expect(c?.type).toBe('STRICT_DNS');
    const tls = c?.transport_socket?.typed_config;
    expect(tls?.['@type']).toBe(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    );
    expect(JSON.stringify(tls)).toContain('spiffe://trellis.local/ns/trellis/sa/kafka');
    expect(JSON.stringify(tls)).toContain('"name":"svid"');
  });

  it('reads certificates through SDS files that watch the certificate directory', () => {
    expect(Object.keys(sdsFiles)).toEqual([
      '/run/trellis/orders-api/sds/svid.yaml',
      '/run/trellis/orders-api/sds/trust-bundle.yaml',
    ]);
    expect(sdsFiles['/run/trellis/orders-api/sds/svid.yaml']?.resources[0]).toMatchObject({
      name: 'svid',
      tls_certificate: {
        certificate_chain: { filename: '/run/trellis/orders-api/certs/svid.pem' },
        watched_directory: { path: '/run/trellis/orders-api/certs' },
      },
    });
  });

  it('names the missing option', () => {
    expect(() => compileEnvoy(model, { ...opts, outbound: {} })).toThrow(
      'compileEnvoy: missing option outbound.cassandra',
    );
    expect(() => compileEnvoy(model, { ...opts, workload: 'nope' })).toThrow(
      "compileEnvoy: no workload 'nope' in the model",
    );
  });

  it('forwards the verified payload only when asked, in a valid header', () => {
    const provider = (b: typeof bootstrap) => {
      const l = b.static_resources.listeners.find((x) => x.name === 'inbound_http');
      const f = l?.filter_chains[0]?.filters[0];
      const h =
        f?.name === 'envoy.filters.network.http_connection_manager'
          ? f.typed_config.http_filters.find((x) => x.name === 'envoy.filters.http.jwt_authn')
          : undefined;
      return h?.name === 'envoy.filters.http.jwt_authn'
        ? h.typed_config.providers['keycloak']
        : undefined;
    };
    expect(provider(bootstrap)).not.toHaveProperty('forward_payload_header');
    const withHeader = compileEnvoy(model, { ...opts, payloadHeader: 'x-jwt-payload' }).bootstrap;
    expect(provider(withHeader)?.forward_payload_header).toBe('x-jwt-payload');
    expect(() => compileEnvoy(model, { ...opts, payloadHeader: 'X Payload' })).toThrow(
      "compileEnvoy: payloadHeader must be a lower-case header name, got 'X Payload'",
    );
  });

  it('the edge listener is plaintext and routes only the model routes', () => {
    const edge = compileEnvoy(example, envoyOptions(example, 'ingress')).bootstrap;
    const l = edge.static_resources.listeners.find((x) => x.name === 'inbound_http');
    expect(l?.filter_chains[0]?.transport_socket).toBeUndefined();
    const f = l?.filter_chains[0]?.filters[0];
    const routes =
      f?.name === 'envoy.filters.network.http_connection_manager'
        ? f.typed_config.route_config.virtual_hosts[0]?.routes
        : [];
    expect(routes?.map((r) => [r.name, r.route?.cluster ?? r.direct_response?.status])).toEqual([
      ['create-order', 'outbound_orders-api'],
      ['get-order', 'outbound_orders-api'],
      ['no-route', 404],
    ]);
  });

  it('gives the edge routes with a budget per-route stats, named as the SLO rules read them', () => {
    const routesOf = (workload: string, m = example) => {
      const b = compileEnvoy(m, envoyOptions(m, workload)).bootstrap;
      const f = b.static_resources.listeners.find((x) => x.name === 'inbound_http')
        ?.filter_chains[0]?.filters[0];
      return f?.name === 'envoy.filters.network.http_connection_manager'
        ? (f.typed_config.route_config.virtual_hosts[0]?.routes ?? [])
        : [];
    };
    expect(routesOf('ingress').map((r) => [r.name, r.stat_prefix])).toEqual([
      ['create-order', routeStatPrefix('create-order')],
      ['get-order', routeStatPrefix('get-order')],
      ['no-route', undefined],
    ]);
    // The backend's sidecar does not count the same requests again.
    expect(routesOf('orders-api').filter((r) => r.stat_prefix !== undefined)).toEqual([]);
    // A route without a budget has no SLO rules, so no stats memory is spent on it.
    const unbudgeted = structuredClone(example);
    delete unbudgeted.routes['get-order']!.budget;
    expect(routesOf('ingress', unbudgeted).map((r) => [r.name, r.stat_prefix])).toEqual([
      ['create-order', 'create-order'],
      ['get-order', undefined],
      ['no-route', undefined],
    ]);
  });
});

describe('Kafka', () => {
  it('grants WRITE to the producer and READ on topic and group to the consumer, nothing else', () => {
    const acl = (
      resourceType: 'GROUP' | 'TOPIC',
      resourceName: string,
      workload: string,
      operation: 'READ' | 'WRITE',
    ) => ({
      resourceType,
      resourceName,
      patternType: 'LITERAL',
      principal: `User:${workload}`,
      host: '*',
      operation,
      permissionType: 'ALLOW',
    });
    expect(compileKafkaAcls(model)).toEqual([
      acl('GROUP', 'ledger', 'ledger', 'READ'),
      acl('GROUP', 'orders-writer', 'orders-writer', 'READ'),
      // The order queue: orders-api produces, the batch writer consumes as group orders-writer.
      acl('TOPIC', 'orders.intake.v1', 'orders-api', 'WRITE'),
      acl('TOPIC', 'orders.intake.v1', 'orders-writer', 'READ'),
      // order.created: only the batch writer produces it, once the order is stored.
      acl('TOPIC', 'orders.v1', 'ledger', 'READ'),
      acl('TOPIC', 'orders.v1', 'orders-writer', 'WRITE'),
    ]);
  });

  it('renders kafka-acls.sh arguments', () => {
    const [group] = compileKafkaAcls(model, { principal: (w) => `User:CN=${w}` });
    expect(group && kafkaAclCliArgs(group)).toEqual([
      '--add',
      '--allow-principal',
      'User:CN=ledger',
      '--allow-host',
      '*',
      '--operation',
      'read',
      '--group',
      'ledger',
      '--resource-pattern-type',
      'literal',
    ]);
  });
});

describe('Cassandra', () => {
  it('creates login roles, maps SPIFFE identities, and grants per keyspace', () => {
    expect(compileCassandra(model).cql.trim().split('\n')).toEqual([
      "CREATE ROLE IF NOT EXISTS 'ledger' WITH LOGIN = true;",
      "ADD IDENTITY IF NOT EXISTS 'spiffe://trellis.local/ns/trellis/sa/ledger' TO ROLE 'ledger';",
      "CREATE ROLE IF NOT EXISTS 'orders-api' WITH LOGIN = true;",
      "ADD IDENTITY IF NOT EXISTS 'spiffe://trellis.local/ns/trellis/sa/orders-api' TO ROLE 'orders-api';",
      "CREATE ROLE IF NOT EXISTS 'orders-writer' WITH LOGIN = true;",
      "ADD IDENTITY IF NOT EXISTS 'spiffe://trellis.local/ns/trellis/sa/orders-writer' TO ROLE 'orders-writer';",
      // orders-api only reads orders; the batch writer writes them.
      'GRANT SELECT ON KEYSPACE "orders" TO \'orders-api\';',
      'GRANT SELECT ON KEYSPACE "orders" TO \'orders-writer\';',
      'GRANT MODIFY ON KEYSPACE "orders" TO \'orders-writer\';',
      'GRANT SELECT ON KEYSPACE "ledger" TO \'ledger\';',
      'GRANT MODIFY ON KEYSPACE "ledger" TO \'ledger\';',
    ]);
  });

  it('can create the keyspaces first', () => {
    const { statements } = compileCassandra(model, {
      replication: { class: 'NetworkTopologyStrategy', datacenter1: 1 },
    });
    expect(statements[0]?.cql).toBe(
      `CREATE KEYSPACE IF NOT EXISTS "orders" WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1};`,
    );
    expect(statements.some((s) => s.cql.includes('system'))).toBe(false);
  });
});

describe('Keycloak', () => {
  const realm = compileKeycloakRealm(model, {
    users: [
      { username: 'alice', password: 'not-a-real-secret', roles: ['order-writer'] },
      { username: 'bob', password: 'not-a-real-secret', roles: ['order-reader'] },
    ],
  });

  it('every emitted field exists in Keycloak 26 representations (checked by tsc)', () => {
    expect(keycloakFields).toEqual([true, true, true, true, true]);
  });

  it('derives the realm from the issuer and declares basic and roles scopes', () => {
    expect(realm.realm).toBe('trellis');
    expect(realm.clientScopes.map((s) => s.name)).toEqual([
      'basic',
      'roles',
      'keycloak-audience',
      'orders:read',
      'orders:write',
    ]);
    expect(
      realm.clientScopes.find((s) => s.name === 'keycloak-audience')?.protocolMappers[0]?.config,
    ).toMatchObject({
      'included.custom.audience': 'trellis-api',
      'access.token.claim': 'true',
    });
  });

  it('gives each scope only to the roles (and agents) the model maps to it', () => {
    expect(realm.scopeMappings).toEqual([
      {
        clientScope: 'orders:read',
        roles: ['agent-reporting-bot', 'order-reader', 'order-writer'],
      },
      { clientScope: 'orders:write', roles: ['order-writer'] },
    ]);
  });

  it('makes the agent a confidential client-credentials client limited to its scopes', () => {
    const bot = realm.clients.find((c) => c.clientId === 'reporting-bot');
    expect(bot).toMatchObject({
      publicClient: false,
      serviceAccountsEnabled: true,
      standardFlowEnabled: false,
      directAccessGrantsEnabled: false,
      fullScopeAllowed: false,
      defaultClientScopes: ['basic', 'keycloak-audience', 'orders:read'],
      optionalClientScopes: [],
    });
    expect(bot?.secret).toBeUndefined();
    expect(
      realm.users.find((u) => u.serviceAccountClientId === 'reporting-bot')?.realmRoles,
    ).toEqual(['agent-reporting-bot']);
  });

  it('creates demo users with non-temporary passwords and complete profiles', () => {
    const alice = realm.users.find((u) => u.username === 'alice');
    expect(alice).toMatchObject({
      enabled: true,
      emailVerified: true,
      requiredActions: [],
      realmRoles: ['order-writer'],
    });
    expect(alice?.credentials).toEqual([
      { type: 'password', value: 'not-a-real-secret', temporary: false },
    ]);
    expect(alice?.email && alice.firstName && alice.lastName).toBeTruthy();
  });

  it('refuses a demo user role the model does not declare', () => {
    expect(() =>
      compileKeycloakRealm(model, {
        users: [{ username: 'eve', password: 'x', roles: ['admin'] }],
      }),
    ).toThrow(/role 'admin', not declared/);
  });
});

describe('nginx', () => {
  const conf = compileNginx(model, {
    listen: { address: '127.0.0.1', port: 8443 },
    tls: { certificate: '/run/t/tls.crt', key: '/run/t/tls.key' },
    upstream: { address: '127.0.0.1', port: 15443 },
    runDir: '/run/t/nginx',
    accessLog: '/run/t/access.log',
    errorLog: '/run/t/error.log',
  });
  it('terminates TLS and serves only the model routes with their methods', () => {
    expect(conf).toContain('listen 127.0.0.1:8443 ssl;');
    expect(conf).toContain('server_name localhost;');
    expect(conf).toContain('location = /orders {\n      limit_except POST { deny all; }');
    expect(conf).toContain('location ~ "^/orders/[^/]+$" {\n      limit_except GET { deny all; }');
    expect(conf).toContain('location / { return 404; }');
  });
  it('limits the body, forwards client IP and request id, keeps upstream connections alive', () => {
    for (const line of [
      'client_max_body_size 1m;',
      'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      'proxy_set_header X-Request-Id $request_id;',
      'proxy_hide_header X-Request-Id;',
      'add_header X-Request-Id $request_id always;',
      'server 127.0.0.1:15443;',
      'keepalive 64;',
      'proxy_set_header Connection "";',
    ])
      expect(conf).toContain(line);
  });
});

describe('k6', () => {
  it('turns budgets into thresholds on each route, as data', () => {
    const k6 = compileK6Thresholds(model);
    const p = (percentile: number) => ({ percentile });
    expect(k6.thresholds).toEqual([
      {
        metric: 'http_req_duration',
        tags: { route: 'create-order' },
        statistic: p(99),
        comparison: '<=',
        value: 10,
      },
      {
        metric: 'http_req_failed',
        tags: { route: 'create-order' },
        statistic: 'rate',
        comparison: '<=',
        value: 0,
      },
      {
        metric: 'http_req_duration',
        tags: { route: 'get-order' },
        statistic: p(99),
        comparison: '<=',
        value: 5,
      },
      {
        metric: 'http_req_failed',
        tags: { route: 'get-order' },
        statistic: 'rate',
        comparison: '<=',
        value: 0,
      },
      { metric: 'trellis_mesh_overhead', tags: {}, statistic: p(50), comparison: '<=', value: 0.3 },
      { metric: 'trellis_mesh_overhead', tags: {}, statistic: p(99), comparison: '<=', value: 1 },
    ]);
    expect(k6.routes.map((r) => [r.route, r.rps])).toEqual([
      ['create-order', 500],
      ['get-order', 1000],
    ]);
  });

  it('adds a p(50) threshold before p(99) when the budget has one', () => {
    const m = structuredClone(model);
    const r = m.routes['get-order'];
    if (!r?.budget) throw new Error('get-order has a budget');
    r.budget.p50Ms = 2;
    expect(
      compileK6Thresholds(m)
        .thresholds.filter((t) => t.tags.route === 'get-order' && t.metric === 'http_req_duration')
        .map((t) => [t.statistic, t.value]),
    ).toEqual([
      [{ percentile: 50 }, 2],
      [{ percentile: 99 }, 5],
    ]);
  });
});

describe('render', () => {
  it('renders every target to parseable files', () => {
    for (const t of renderTargets) {
      const files = renderTarget(model, t, { baseDir: '/srv/trellis' });
      expect(Object.keys(files).length).toBeGreaterThan(0);
      for (const [name, text] of Object.entries(files)) {
        if (name.endsWith('.json')) expect(() => JSON.parse(text) as unknown).not.toThrow();
        if (name.endsWith('.yaml'))
          expect(() => text.split(/^---$/m).map((d) => parse(d) as unknown)).not.toThrow();
        expect(text.length).toBeGreaterThan(0);
      }
    }
  });
});
