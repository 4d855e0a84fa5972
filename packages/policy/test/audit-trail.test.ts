/**
 * The audit trail's compiled parts: the sidecars' access logs (every listener, HTTP and TCP, with the
 * identity fields the trail joins on, and nothing that could carry a token: no Authorization header,
 * no query string) and the realm's login and token events.
 */
import { describe, expect, it } from 'vitest';
import { compileEnvoy, compileKeycloakRealm } from '../src/index.ts';
import type { EnvoyListener, NetworkFilter } from '../src/index.ts';
import { referenceBound } from './fixtures.ts';

const model = referenceBound();
const base = {
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
const path = '/run/trellis/orders-api/access.log';

function filters(listeners: EnvoyListener[], name: string): NetworkFilter[] {
  return listeners.find((l) => l.name === name)?.filter_chains[0]?.filters ?? [];
}

describe('Envoy access log', () => {
  const { bootstrap } = compileEnvoy(model, { ...base, accessLog: path });
  const listeners = bootstrap.static_resources.listeners;
  const hcm = filters(listeners, 'inbound_http').find(
    (f) => f.name === 'envoy.filters.network.http_connection_manager',
  );
  const http = hcm?.name === 'envoy.filters.network.http_connection_manager' ? hcm : undefined;
  const log = http?.typed_config.access_log?.[0];

  it('writes JSON lines to the given file on the inbound HTTP listener', () => {
    expect(log?.name).toBe('envoy.access_loggers.file');
    expect(log?.typed_config.path).toBe(path);
  });

  it('logs the peer SPIFFE ID, the verified claims, RBAC decision, route and request id', () => {
    expect(log?.typed_config.log_format.json_format).toMatchObject({
      source: 'envoy',
      workload: 'orders-api',
      listener: 'inbound_http',
      requestId: '%REQ(x-request-id)%',
      route: '%ROUTE_NAME%',
      details: '%RESPONSE_CODE_DETAILS%',
      peer: '%DOWNSTREAM_PEER_URI_SAN%',
      rbac: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_engine_result)%',
      rbacPolicy: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%',
      jwt: {
        keycloak: {
          sub: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:keycloak:sub)%',
          azp: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:keycloak:azp)%',
          scope: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:keycloak:scope)%',
        },
      },
      jwtFailure: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_failure:message)%',
    });
  });

  it('logs no header that carries a token, and the path without its query string', () => {
    const text = JSON.stringify(log?.typed_config.log_format).toLowerCase();
    expect(text).not.toContain('authorization');
    expect(text).not.toContain('x-jwt-payload');
    expect(text).not.toMatch(/%req\(:path\)%/);
    expect(log?.typed_config.log_format.json_format.path).toBe('%PATH(NQ)%');
  });

  it('logs each connection of the TCP proxies (the data-store egress)', () => {
    for (const name of ['outbound_cassandra', 'outbound_kafka']) {
      const tcp = filters(listeners, name).find(
        (f) => f.name === 'envoy.filters.network.tcp_proxy',
      );
      const t = tcp?.name === 'envoy.filters.network.tcp_proxy' ? tcp.typed_config : undefined;
      expect(t?.access_log?.[0]?.typed_config.path).toBe(path);
      expect(t?.access_log?.[0]?.typed_config.log_format.json_format).toMatchObject({
        listener: name,
        upstreamPeer: '%UPSTREAM_PEER_URI_SAN%',
      });
    }
  });

  it('writes no access log unless asked', () => {
    const plain = JSON.stringify(compileEnvoy(model, base).bootstrap);
    expect(plain).not.toContain('access_log');
  });

  it('refuses a relative access log path, naming the option', () => {
    expect(() => compileEnvoy(model, { ...base, accessLog: 'access.log' })).toThrow(
      "compileEnvoy: accessLog must be an absolute path (no newline or '%'), got 'access.log'",
    );
  });
});

describe('Keycloak events', () => {
  const realm = compileKeycloakRealm(model);

  it('logs login and token events, failures included, through jboss-logging', () => {
    expect(realm.eventsEnabled).toBe(true);
    expect(realm.eventsListeners).toEqual(['jboss-logging']);
    for (const t of ['LOGIN', 'LOGIN_ERROR', 'CLIENT_LOGIN', 'CLIENT_LOGIN_ERROR', 'REFRESH_TOKEN'])
      expect(realm.enabledEventTypes).toContain(t);
    expect(realm.eventsExpiration).toBe(86_400);
  });
});
