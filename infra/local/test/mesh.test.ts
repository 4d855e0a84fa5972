// Unit tests of the request path's pure pieces: the identity model and demo roles, the port and
// egress plans, the services' environment, the compiled sidecar config, and `./trellis token`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  relativeSdsFiles,
  sidecarArtefacts,
  type SidecarCompileOptions,
} from '@trellis/components/local/sidecar';
import { cqlOf } from '@trellis/components/local/service-impl';
import { ordersDdl } from '@trellis/contracts/orders-table';
import { generate } from '@trellis/components/local/keycloak-impl';
import {
  bind,
  bindOrThrow,
  localPortsAt,
  parseModel,
  type EnvoyBootstrap,
  type HttpFilter,
  type IdentityProvider,
  type ValidModel,
} from '@trellis/policy';
import {
  knownPrincipals,
  parseTokenArgs,
  principalsFrom,
  tokenRequest,
  type Principals,
} from '../../../packages/cli/src/verbs/token.ts';
import { localEnvironment } from '../src/context.ts';
import { planDataPorts } from '../src/data.ts';
import { demoUsers, rolesForScopes, servedProvider } from '../src/identity.ts';
import { schemaPlan, serviceImplementations, sidecarPlan } from '../src/mesh.ts';

const repoModel = (): ValidModel => {
  const r = parseModel(readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  return r.model;
};
const model = repoModel();
const ports = localPortsAt(8000);
/** A model bound to the stack at base 8000 (`local`), or at `base`. */
const local = (m: ValidModel, base = 8000) =>
  bindOrThrow(m, localEnvironment(base, '/stack'), `stack at ${base}`);
const bound = local(model);

/** The model with edits applied to a copy of its plain data. */
function variant(edit: (m: Record<string, unknown> & ValidModel) => void): ValidModel {
  const data = structuredClone(model) as Record<string, unknown> & ValidModel;
  edit(data);
  const r = parseModel(JSON.stringify(data));
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join('; '));
  return r.model;
}

describe('identity', () => {
  it('finds the provider served by the local Keycloak and its realm', () => {
    expect(servedProvider(bound)).toEqual({
      name: 'keycloak',
      keycloak: { baseUrl: 'https://localhost:8180', realm: 'trellis' },
    });
  });

  it('leaves the model as written for stack local, and moves the issuer for another port', () => {
    expect(bound.identityProviders).toEqual(model.identityProviders);
    const e2e = local(model, 28_000);
    const idp = e2e.identityProviders.keycloak as IdentityProvider;
    expect(idp.issuer).toBe('https://localhost:28180/realms/trellis');
    expect(idp.jwksUri).toBe(
      'https://localhost:28180/realms/trellis/protocol/openid-connect/certs',
    );
    expect(idp.audiences).toEqual(['trellis-api']);
    expect(e2e.routes).toEqual(model.routes);
  });

  it('refuses a model without a loopback Keycloak issuer, naming what it has', () => {
    const external = variant((m) => {
      (m.identityProviders.keycloak as IdentityProvider).issuer = 'https://idp.example.com/oauth2';
      (m.identityProviders.keycloak as IdentityProvider).jwksUri =
        'https://idp.example.com/oauth2/keys';
    });
    expect(bind(external, localEnvironment(8000, '/stack')).errors).toEqual([
      {
        path: 'identityProviders',
        reason:
          'none is served by the local Keycloak; declare one whose issuer is http://localhost:<port>/realms/<realm> (have: keycloak https://idp.example.com/oauth2)',
      },
    ]);
  });

  it('gives alice the writer role and bob the reader role, from the scopes they need', () => {
    const idp = model.identityProviders.keycloak as IdentityProvider;
    const roles = Object.fromEntries(
      demoUsers.map((u) => [u.username, rolesForScopes(idp, 'keycloak', u)]),
    );
    expect(roles).toEqual({ alice: ['order-writer'], bob: ['order-reader'] });
  });

  it('refuses a demo user no role fits without granting more', () => {
    const idp = model.identityProviders.keycloak as IdentityProvider;
    expect(() =>
      rolesForScopes(idp, 'keycloak', { username: 'carol', scopes: ['orders:write'] }),
    ).toThrow(
      'demo user carol: no role of identityProviders.keycloak grants orders:write without granting more (roles: order-writer, order-reader)',
    );
  });

  it('generates distinct base64url secrets of the asked size, and refuses a short one', () => {
    const a = generate({ bytes: 24 }).value;
    const b = generate({ bytes: 24 }).value;
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a).not.toBe(b);
    expect(() => generate({ bytes: 8 })).toThrow('bytes must be an integer in [16, 256], got 8');
  });
});

describe('mesh ports and egress', () => {
  const data = planDataPorts(bound);
  const ports8 = (w: string) => {
    const b = bound.binding.workloads[w];
    const port = (r: Record<string, { port: number }> = {}) =>
      Object.fromEntries(Object.entries(r).map(([n, e]) => [n, e.port]));
    return { adminPort: b?.admin?.port, inbound: port(b?.inbound), app: port(b?.app) };
  };

  it('gives each workload its admin, inbound and app ports from the stack base', () => {
    expect(
      Object.fromEntries(['ingress', 'ledger', 'orders-api'].map((w) => [w, ports8(w)])),
    ).toEqual({
      ingress: { adminPort: 8500, inbound: { http: 8600 }, app: {} },
      ledger: { adminPort: 8501, inbound: { http: 8610 }, app: { http: 8810 } },
      'orders-api': { adminPort: 8502, inbound: { http: 8620 }, app: { http: 8820 } },
    });
  });

  it('uses no port twice across the mesh, the data layer and the fixed ports', () => {
    const all = [
      ...Object.values(ports),
      ...Object.keys(bound.workloads).flatMap((w) => {
        const p = ports8(w);
        return [p.adminPort ?? 0, ...Object.values(p.inbound), ...Object.values(p.app)];
      }),
      ...data.egress.map((e) => e.listenPort),
      ...data.kafkaListeners.map((l) => l.port),
    ];
    // The range starts (envoyAdminFrom, sidecarInboundFrom, ...) are the first ports of ingress.
    const named = new Set(Object.values(ports));
    const planned = all.filter((p) => !named.has(p));
    expect(new Set(planned).size).toBe(planned.length);
  });

  it('sends the edge to orders-api at its sidecar, and the backends to the data layer egress', () => {
    expect(sidecarPlan(bound, 'ingress').outbound).toEqual({
      'orders-api': { address: '127.0.0.1', port: 8620 },
    });
    expect(sidecarPlan(bound, 'orders-api').outbound).toEqual({
      cassandra: {
        address: '127.0.0.1',
        port: ports.cassandraNative,
        listenPort: 8720,
        spiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra',
      },
      kafka: {
        address: '127.0.0.1',
        port: 8303,
        listenPort: 8721,
        spiffeId: 'spiffe://trellis.local/ns/trellis/sa/kafka',
      },
    });
  });

  it('gives a backend that calls a peer a plaintext egress listener in its block', () => {
    const m = variant((x) => {
      x.workloads['orders-api']?.calls.push('ledger');
    });
    expect(sidecarPlan(local(m), 'orders-api').outbound?.ledger).toEqual({
      address: '127.0.0.1',
      port: 8610,
      listenPort: 8722,
    });
  });

  it('refuses a model with no edge workload', () => {
    const m = variant((x) => {
      delete (x.workloads.ingress as { edge?: boolean }).edge;
      x.routes = {};
      // trellis.yaml's ci budgets name the routes removed here.
      delete x.budgets?.environments;
    });
    expect(() => local(m)).toThrow(
      'workloads: the local stack runs one nginx in front of one edge workload; the model has 0 (none)',
    );
  });

  it('knows the smoke services and their table DDL', () => {
    expect(Object.keys(serviceImplementations).sort()).toEqual([
      'ledger',
      'orders-api',
      'orders-writer',
    ]);
    expect(serviceImplementations['orders-writer']?.entry).toMatch(
      /\/packages\/services\/orders-writer\/src\/server\.ts$/,
    );
    // orders-api reads and orders-writer writes one table, declared once in @trellis/contracts.
    expect(serviceImplementations['orders-writer']?.ddl).toBe(ordersDdl);
    expect(serviceImplementations['orders-api']?.ddl).toBe(ordersDdl);
    expect(cqlOf(ordersDdl)).toMatch(
      /^CREATE TABLE IF NOT EXISTS orders\.orders \( id uuid PRIMARY KEY,/,
    );
  });

  it('applies each table DDL once: the first service needing it applies it, the others wait for it', () => {
    expect(schemaPlan(['ledger', 'orders-api', 'orders-writer'])).toEqual({
      ledger: { apply: serviceImplementations.ledger?.ddl },
      'orders-api': { apply: ordersDdl },
      'orders-writer': { after: 'orders-api' },
    });
    // Without orders-api in the model, the writer applies the orders table itself.
    expect(schemaPlan(['ledger', 'orders-writer'])).toEqual({
      ledger: { apply: serviceImplementations.ledger?.ddl },
      'orders-writer': { apply: ordersDdl },
    });
    // A workload the stack has no implementation of gets no step (only its sidecar runs).
    expect(schemaPlan(['billing', 'orders-writer'])).toEqual({
      'orders-writer': { apply: ordersDdl },
    });
  });
});

describe('sidecar config', () => {
  const svid = { cert: '/p/cert.pem', key: '/p/key.pem', bundle: '/p/bundle.pem' };
  const opts = (w: string): SidecarCompileOptions => {
    const { certDir: _c, dir: _d, ...o } = sidecarPlan(bound, w);
    return o;
  };
  const jwt = (b: EnvoyBootstrap) =>
    b.static_resources.listeners
      .flatMap((l) => l.filter_chains.flatMap((c) => c.filters))
      .flatMap((f) =>
        f.name === 'envoy.filters.network.http_connection_manager'
          ? f.typed_config.http_filters
          : [],
      )
      .filter(
        (h): h is Extract<HttpFilter, { name: 'envoy.filters.http.jwt_authn' }> =>
          h.name === 'envoy.filters.http.jwt_authn',
      );

  it('forwards the verified payload in x-jwt-payload, with issuer, audience and expiry required', () => {
    const a = sidecarArtefacts(bound, opts('orders-api'), '/run/orders-api-sidecar', svid);
    const [filter] = jwt(a.bootstrap);
    expect(filter?.typed_config.providers.keycloak).toMatchObject({
      issuer: 'https://localhost:8180/realms/trellis',
      audiences: ['trellis-api'],
      require_expiration: true,
      forward_payload_header: 'x-jwt-payload',
    });
    expect(filter?.typed_config.rules).toEqual([
      { match: { prefix: '/' }, requires: { provider_name: 'keycloak' } },
    ]);
    expect(a.bootstrap.admin?.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 8502,
    });
  });

  it('requires the ingress SVID on orders-api inbound, and sets XFCC with the peer URI', () => {
    const a = sidecarArtefacts(bound, opts('orders-api'), '/run/orders-api-sidecar', svid);
    const inbound = a.bootstrap.static_resources.listeners.find((l) => l.name === 'inbound_http');
    const chain = inbound?.filter_chains[0];
    const tls = chain?.transport_socket?.typed_config as unknown as {
      require_client_certificate: boolean;
      common_tls_context: {
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: unknown[] };
        };
      };
    };
    expect(tls.require_client_certificate).toBe(true);
    expect(
      tls.common_tls_context.combined_validation_context.default_validation_context
        .match_typed_subject_alt_names,
    ).toEqual([
      { san_type: 'URI', matcher: { exact: 'spiffe://trellis.local/ns/trellis/sa/ingress' } },
    ]);
    const hcm = chain?.filters[0];
    expect(
      hcm?.name === 'envoy.filters.network.http_connection_manager' && hcm.typed_config,
    ).toMatchObject({
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { uri: true },
    });
  });

  it("writes the SDS files under the sidecar's dir, naming the SVID files", () => {
    const a = sidecarArtefacts(bound, opts('ledger'), '/run/ledger-sidecar', svid);
    const files = relativeSdsFiles(a, '/run/ledger-sidecar');
    expect(Object.keys(files).sort()).toEqual(['sds/svid.yaml', 'sds/trust-bundle.yaml']);
    expect(files['sds/svid.yaml']).toContain('"/p/cert.pem"');
    expect(() => relativeSdsFiles(a, '/elsewhere')).toThrow(
      "SDS file /run/ledger-sidecar/sds/svid.yaml is outside the sidecar's dir /elsewhere",
    );
  });

  it('adds no payload header where there is no jwt_authn, and refuses a bad header name', () => {
    const a = sidecarArtefacts(bound, opts('ingress'), '/run/ingress-sidecar', svid);
    expect(jwt(a.bootstrap)).toEqual([]);
    expect(() =>
      sidecarArtefacts(
        bound,
        { ...opts('orders-api'), payloadHeader: 'X Payload' },
        '/run/orders-api-sidecar',
        svid,
      ),
    ).toThrow("payloadHeader must be a lower-case header name, got 'X Payload'");
  });
});

describe('./trellis token', () => {
  const p: Principals = {
    tokenUrl: 'http://localhost:8180/realms/trellis/protocol/openid-connect/token',
    cliClientId: 'trellis-cli',
    users: { bob: 'pw-bob', alice: 'pw-alice' },
    agents: { 'reporting-bot': 'secret-bot' },
  };

  it('reads --as and --stack', () => {
    expect(parseTokenArgs(['--as', 'alice'])).toEqual({ as: 'alice', stack: 'local' });
    expect(parseTokenArgs(['--stack', 'e2e', '--as', 'bob'])).toEqual({ as: 'bob', stack: 'e2e' });
    expect(() => parseTokenArgs([])).toThrow(
      '--as needs a principal; usage: ./trellis token --as <user|agent> [--stack S]',
    );
    expect(() => parseTokenArgs(['--as', 'alice', '--raw'])).toThrow("unknown option '--raw'");
  });

  it('asks for a password grant for a user and client credentials for an agent', () => {
    expect(Object.fromEntries(tokenRequest(p, 'alice'))).toEqual({
      grant_type: 'password',
      client_id: 'trellis-cli',
      username: 'alice',
      password: 'pw-alice',
    });
    expect(Object.fromEntries(tokenRequest(p, 'reporting-bot'))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'reporting-bot',
      client_secret: 'secret-bot',
    });
  });

  it('refuses an unknown principal, listing the known ones', () => {
    expect(knownPrincipals(p)).toEqual(['alice', 'bob', 'reporting-bot']);
    expect(() => tokenRequest(p, 'mallory')).toThrow(
      "unknown principal 'mallory': known are alice, bob, reporting-bot",
    );
    expect(() => tokenRequest(p, 'toString')).toThrow("unknown principal 'toString'");
  });

  it('says how to bring the stack up when it has no principals output', () => {
    expect(() => principalsFrom({}, 'e2e')).toThrow(
      "stack 'e2e' has no 'principals' output: is it up? Run ./trellis up --stack e2e",
    );
    expect(() => principalsFrom({ principals: { tokenUrl: 1 } }, 'local')).toThrow(
      "stack 'local': the 'principals' output is not { tokenUrl, cliClientId, users, agents }",
    );
    expect(principalsFrom({ principals: p }, 'local')).toBe(p);
  });
});
