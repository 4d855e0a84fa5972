/**
 * fast-check arbitraries: valid models built from a small vocabulary (so that requests often hit the
 * interesting cases), and requests biased towards the names the model uses.
 */
import fc from 'fast-check';
import {
  callersOf,
  cassandraPermissions,
  routesOf,
  spiffeId,
  validateModel,
} from '../src/index.ts';
import type { JsonValue, Peer, Token, ValidModel } from '../src/index.ts';

/** The fixed "now" of generated requests (seconds). */
export const NOW = 1_800_000_000;
/**
 * Issuer of generated provider `p`: `p1` is a Keycloak realm on loopback (the one a local stack's
 * Keycloak takes over when the model is bound to `local`), the others external.
 */
export const issuerOf = (p: string) =>
  p === 'p1' ? 'http://localhost:8180/realms/r' : `https://${p}.idp.example/realms/r`;
/** JWKS URI of generated provider `p`. */
const jwksOf = (p: string) =>
  p === 'p1' ? `${issuerOf(p)}/protocol/openid-connect/certs` : `https://${p}.idp.example/jwks`;
const foreignId = 'spiffe://other.example/ns/x/sa/y';
const scopes = ['s1', 's2', 's3'];

const routeSeed = fc.record({
  backend: fc.nat(3),
  method: fc.constantFrom('GET', 'POST'),
  path: fc.constantFrom('/x', '/x/{id}', '/y/{a}/z', '/'),
  provider: fc.nat(1),
  scopes: fc.subarray(scopes),
  claims: fc.option(
    fc.constantFrom<Record<string, string[]>>({ tier: ['gold'] }, { 'org.team': ['t1', 't2'] }),
    {
      nil: undefined,
    },
  ),
});

const modelSeed = fc.record({
  n: fc.integer({ min: 1, max: 4 }),
  ports: fc.array(
    fc.array(fc.constantFrom('http', 'http', 'grpc', 'tcp'), { minLength: 1, maxLength: 2 }),
    {
      minLength: 4,
      maxLength: 4,
    },
  ),
  calls: fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), {
    minLength: 4,
    maxLength: 4,
  }),
  edgeCalls: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  /** The metrics scraper's service account (none: no `metrics` block). */
  scraper: fc.option(fc.constantFrom('prometheus', 'scraper'), { nil: undefined, freq: 4 }),
  /** Each workload's app metrics path, where it has an http port and there is a scraper. */
  appMetrics: fc.array(fc.option(fc.constantFrom('/metrics', '/x', '/m/1'), { nil: undefined }), {
    minLength: 4,
    maxLength: 4,
  }),
  providers: fc.array(
    fc.record({
      auds: fc.subarray(['aud1', 'aud2'], { minLength: 1 }),
      scopeClaim: fc.constantFrom('scope', 'scope', 'scp'),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  routes: fc.array(routeSeed, { maxLength: 5 }),
  grants: fc.array(
    fc.record({
      identity: fc.nat(3),
      keyspace: fc.constantFrom('k1', 'k2'),
      table: fc.option(fc.constantFrom('t1', 't2'), { nil: undefined }),
      permissions: fc.subarray([...cassandraPermissions], { minLength: 1 }),
    }),
    { maxLength: 4 },
  ),
  topics: fc.array(
    fc.record({
      name: fc.constantFrom('orders.v1', 'ord', 'events'),
      pattern: fc.constantFrom('literal', 'prefixed'),
      producers: fc.subarray([0, 1, 2, 3]),
      consumers: fc.array(
        fc.record({
          identity: fc.nat(3),
          group: fc.constantFrom('g1', 'g', 'ledger'),
          groupPattern: fc.constantFrom('literal', 'prefixed'),
        }),
        { maxLength: 2 },
      ),
    }),
    { maxLength: 3 },
  ),
});

type ModelSeed = typeof modelSeed extends fc.Arbitrary<infer T> ? T : never;

/** Builds a model from a seed; every seed gives a valid model (asserted). */
function build(seed: ModelSeed): ValidModel {
  const names = Array.from({ length: seed.n }, (_, i) => `w${i}`);
  const workloads: Record<
    string,
    {
      ports: { name: string; port: number; protocol: string }[];
      calls: string[];
      edge?: boolean;
      metrics?: { port: string; path: string };
    }
  > = {};
  names.forEach((w, i) => {
    const ports = (seed.ports[i] ?? ['http']).map((protocol, j) => ({
      name: `p${j}`,
      port: 8000 + i * 10 + j,
      protocol,
    }));
    const http = ports.find((p) => p.protocol === 'http');
    const path = seed.appMetrics[i];
    workloads[w] = {
      ports,
      calls: names.filter((o, j) => j !== i && seed.calls[i]?.[j]),
      ...(seed.scraper !== undefined && http && path ? { metrics: { port: http.name, path } } : {}),
    };
  });
  const edge = {
    edge: true,
    ports: [{ name: 'http', port: 8443, protocol: 'http' }],
    calls: names.filter((_, j) => seed.edgeCalls[j]),
  };
  const callData = (w: string, svc: string) => {
    const c = workloads[w]?.calls;
    if (c && !c.includes(svc)) c.push(svc);
  };
  const providers = seed.providers.map((p, i) => [`p${i + 1}`, p] as const);
  const identityProviders = Object.fromEntries(
    providers.map(([name, p]) => [
      name,
      {
        issuer: issuerOf(name),
        audiences: p.auds,
        jwksUri: jwksOf(name),
        scopeClaim: p.scopeClaim,
        scopes,
      },
    ]),
  );
  const routes: Record<string, unknown> = {};
  const seen = new Set<string>();
  const backendPort = new Map<string, string>();
  seed.routes.forEach((r, i) => {
    const backend = names[r.backend % seed.n] ?? 'w0';
    const http = workloads[backend]?.ports.find((p) => p.protocol === 'http');
    if (!http) return;
    const port = backendPort.get(backend) ?? http.name;
    backendPort.set(backend, port);
    const key = `${backend}|${r.method}|${r.path}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (!edge.calls.includes(backend)) edge.calls.push(backend);
    const provider = providers[Math.min(r.provider, providers.length - 1)]?.[0] ?? 'p1';
    routes[`r${i}`] = {
      hosts: ['api.example'],
      method: r.method,
      path: r.path,
      backend,
      port,
      auth: {
        provider,
        scopes: r.scopes.length === 0 && !r.claims ? ['s1'] : r.scopes,
        ...(r.claims ? { claims: r.claims } : {}),
      },
    };
  });
  const grants = seed.grants.map((g) => {
    const identity = names[g.identity % seed.n] ?? 'w0';
    callData(identity, 'cassandra');
    const permissions =
      g.table === undefined ? g.permissions : g.permissions.filter((p) => p !== 'CREATE');
    return {
      identity,
      keyspace: g.keyspace,
      ...(g.table ? { table: g.table } : {}),
      permissions: permissions.length ? permissions : ['SELECT'],
    };
  });
  const topics: Record<string, unknown> = {};
  for (const t of seed.topics) {
    if (t.name in topics) continue;
    const producers = [
      ...new Set(t.producers.filter((p) => p < seed.n).map((p) => names[p] ?? 'w0')),
    ];
    producers.forEach((p) => callData(p, 'kafka'));
    const consumers = t.consumers.map((c) => {
      const identity = names[c.identity % seed.n] ?? 'w0';
      callData(identity, 'kafka');
      return { identity, group: c.group, groupPattern: c.groupPattern };
    });
    topics[t.name] = { pattern: t.pattern, producers, consumers };
  }
  const data = {
    version: 1,
    trustDomain: 'td.example',
    namespace: 'ns',
    regions: { local: {} },
    identityProviders,
    workloads: { ...workloads, edge },
    routes,
    cassandra: {
      keyspaces: { k1: { tables: ['t1', 't2'] }, k2: { tables: ['t1', 't2'] } },
      grants,
    },
    kafka: { topics },
    ...(seed.scraper !== undefined
      ? { metrics: { scraper: { serviceAccount: seed.scraper } } }
      : {}),
  };
  const r = validateModel(data);
  if (!r.ok)
    throw new Error(
      `generator produced an invalid model: ${JSON.stringify(r.errors)}\n${JSON.stringify(data)}`,
    );
  return r.model;
}

/** Valid models. */
export const modelArb: fc.Arbitrary<ValidModel> = modelSeed.map(build);

const tokenSeed = fc.record({
  alg: fc.constantFrom('RS256', 'RS256', 'RS256', 'none'),
  signatureValid: fc.constantFrom(true, true, true, false),
  iss: fc.constantFrom(
    issuerOf('p1'),
    issuerOf('p1'),
    issuerOf('p2'),
    'https://evil.example/realms/r',
  ),
  aud: fc.constantFrom<JsonValue | undefined>('aud1', ['aud2', 'x'], 'other', undefined),
  exp: fc.option(fc.constantFrom(-3600, -61, -60, -59, 0, 30, 3600, 3600), {
    nil: undefined,
    freq: 6,
  }),
  nbf: fc.option(fc.constantFrom(-10, 59, 60, 61, 3600), { nil: undefined, freq: 2 }),
  scopeForm: fc.constantFrom('string', 'list'),
  scopes: fc.subarray(scopes),
  tier: fc.option(fc.constantFrom<JsonValue>('gold', 'silver', ['gold', 'x'], 7), {
    nil: undefined,
  }),
  team: fc.option(fc.constantFrom<JsonValue>('t1', 't3', ['t2']), { nil: undefined }),
});

/** Tokens that pass the provider checks (signature, audience, time), with random scopes and claims. */
const goodTokenSeed = fc.record({
  alg: fc.constant('RS256'),
  signatureValid: fc.constant(true),
  iss: fc.constantFrom(issuerOf('p1'), issuerOf('p1'), issuerOf('p2')),
  aud: fc.constant<JsonValue | undefined>(['aud1', 'aud2']),
  exp: fc.constantFrom<number | undefined>(3600, 3600, 3600, -59, -60, -61, undefined),
  nbf: fc.constantFrom<number | undefined>(undefined, undefined, undefined, 59, 60, 61),
  scopeForm: fc.constantFrom('string', 'list'),
  scopes: fc.oneof(fc.constant(scopes), fc.subarray(scopes)),
  tier: fc.constantFrom<JsonValue | undefined>('gold', 'gold', ['x', 'gold'], 'silver', undefined),
  team: fc.constantFrom<JsonValue | undefined>(['t2'], 't1', 't3', undefined),
});

/** A token; `withExp` forces an `exp` claim (Istio does not require one). */
export function tokenArb(withExp = false): fc.Arbitrary<Token> {
  return fc
    .oneof({ arbitrary: tokenSeed, weight: 1 }, { arbitrary: goodTokenSeed, weight: 2 })
    .map((t) => {
      const claims: Record<string, JsonValue> = { iss: t.iss, sub: 'u1' };
      if (t.aud !== undefined) claims['aud'] = t.aud;
      const exp = t.exp ?? (withExp ? 3600 : undefined);
      if (exp !== undefined) claims['exp'] = NOW + exp;
      if (t.nbf !== undefined) claims['nbf'] = NOW + t.nbf;
      const sc: JsonValue = t.scopeForm === 'string' ? t.scopes.join(' ') : t.scopes;
      claims['scope'] = sc;
      claims['scp'] = sc;
      if (t.tier !== undefined) claims['tier'] = t.tier;
      if (t.team !== undefined) claims['org'] = { team: t.team };
      return { alg: t.alg, signatureValid: t.signatureValid, claims };
    });
}

/** A seed for a request to a mesh workload; `materialize` turns it into a concrete request. */
export const meshRequestSeed = (withExp = false) =>
  fc.record({
    to: fc.nat(3),
    port: fc.nat(1),
    peer: fc.oneof(
      { arbitrary: fc.constant({ kind: 'none' as const }), weight: 1 },
      {
        arbitrary: fc.record({
          kind: fc.constant('cert' as const),
          who: fc.nat(5),
          trusted: fc.constantFrom(true, true, true, false),
        }),
        weight: 6,
      },
    ),
    method: fc.constantFrom('GET', 'POST', 'DELETE'),
    path: fc.constantFrom('/x', '/x/1', '/x/1/2', '/y/a/z', '/y/a/b', '/', '/xx', '/x/'),
    token: fc.option(tokenArb(withExp), { nil: undefined, freq: 4 }),
    // Most requests come from a real caller and follow a real route, so that route rules get exercised.
    bias: fc.nat(9),
  });

type MeshSeed = ReturnType<typeof meshRequestSeed> extends fc.Arbitrary<infer T> ? T : never;

/** A concrete mesh request: destination workload and port, peer, and HTTP details when the port is HTTP. */
export interface MeshRequest {
  to: string;
  portName: string;
  portNumber: number;
  protocol: 'http' | 'grpc' | 'tcp';
  peer: Peer;
  method: string;
  path: string;
  token?: Token;
}

/** Materializes a seed against a model (destinations are the non-edge workloads). */
export function materialize(model: ValidModel, s: MeshSeed): MeshRequest {
  const names = Object.entries(model.workloads)
    .filter(([, w]) => !w.edge)
    .map(([n]) => n);
  const all = Object.keys(model.workloads);
  const to = names[s.to % names.length] ?? 'w0';
  const ports = model.workloads[to]?.ports ?? [];
  const routes = routesOf(model, to);
  const routed = s.bias < 7 ? routes[s.to % Math.max(routes.length, 1)] : undefined;
  const port =
    (routed ? ports.find((p) => p.name === routed[1].port) : undefined) ??
    ports[s.port % ports.length] ??
    ({ name: 'p0', port: 8000, protocol: 'http' } as const);
  let peer: Peer = { kind: 'none' };
  const callers = callersOf(model, to);
  if (s.bias < 7 && callers.length > 0 && s.peer.kind === 'cert' && s.peer.trusted)
    peer = {
      kind: 'cert',
      spiffeId: spiffeId(model, callers[s.peer.who % callers.length] ?? 'w0'),
      trusted: true,
    };
  else if (s.peer.kind === 'cert') {
    const who = all[s.peer.who];
    peer = {
      kind: 'cert',
      spiffeId: who !== undefined ? spiffeId(model, who) : foreignId,
      trusted: s.peer.trusted,
    };
  }
  const method = routed && s.bias < 5 ? routed[1].method : s.method;
  const path = routed && s.bias < 5 ? routed[1].path.replace(/\{[^}]+\}/g, 'v1') : s.path;
  return {
    to,
    portName: port.name,
    portNumber: port.port,
    protocol: port.protocol,
    peer,
    method,
    path,
    ...(s.token ? { token: s.token } : {}),
  };
}
