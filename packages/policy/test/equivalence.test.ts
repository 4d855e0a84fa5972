/**
 * The equivalence proofs: for generated models and requests, each compiled target, evaluated with that
 * system's documented semantics, decides as the oracle does. ≥ 1,000 models per property, several
 * requests per model. Every model is bound to every environment kind (example, local, kubernetes) and
 * compiled from the bound model, with each request translated into the environment's names (issuer,
 * host, SPIFFE IDs): a binding that changes an allow/deny decision fails here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allowed,
  compileCassandra,
  compileEnvoy,
  compileIstio,
  compileKafkaAcls,
  evaluateCassandra,
  evaluateEnvoy,
  evaluateIstio,
  evaluateKafkaAcls,
  envoyOptions,
  kafkaOperations,
  parseCassandraAuth,
  scraperSpiffeId,
  spiffeId,
  edgeWorkloads,
  namespaceOf,
  cassandraPermissions,
} from '../src/index.ts';
import type {
  AccessRequest,
  Decision,
  EnvoyArtefacts,
  Peer,
  ScrapeRequest,
  Token,
  ValidModel,
} from '../src/index.ts';
import { NOW, materialize, meshRequestSeed, modelArb, tokenArb } from './arbitraries.ts';
import type { MeshRequest } from './arbitraries.ts';
import { bindEverywhere } from './environments.ts';
import type { Bound } from './environments.ts';

const RUNS = 1000;
const PER_MODEL = 6;

/** The HTTP part of a request as the oracle and every evaluator take it, at the fixed NOW. */
function httpOf(r: { method: string; path: string; token?: Token | undefined }) {
  return { method: r.method, path: r.path, now: NOW, ...(r.token ? { token: r.token } : {}) };
}

/** `r` in the names of environment `b`: the token's issuer and the peer's SPIFFE ID moved. */
function translate(b: Bound, r: MeshRequest): MeshRequest {
  const { token, ...rest } = r;
  return { ...rest, peer: b.peer(r.peer), ...(token ? { token: b.token(token) } : {}) };
}

/** The `http` field of a sidecar-level request (Istio, Envoy); none for TCP. */
function httpField(r: MeshRequest) {
  return r.protocol === 'tcp' ? {} : { http: httpOf(r) };
}

function oracleFor(model: ValidModel, r: MeshRequest): Decision {
  const req: AccessRequest =
    r.protocol === 'tcp'
      ? { kind: 'tcp', to: r.to, port: r.portName, peer: r.peer }
      : { kind: 'http', to: r.to, port: r.portName, peer: r.peer, ...httpOf(r) };
  return allowed(model, req);
}

/** The oracle decides the same on the bound model and the translated request. */
function oracleKeeps(b: Bound, model: ValidModel, r: MeshRequest, o: Decision): void {
  agree(`oracle on the ${b.kind} binding`, model, r, o, oracleFor(b.model, translate(b, r)));
}

function agree(
  target: string,
  model: ValidModel,
  request: unknown,
  oracle: Decision,
  got: Decision,
) {
  if (oracle.allowed !== got.allowed)
    throw new Error(
      `${target} says ${got.allowed ? 'allow' : 'deny'} (${got.reason}) but the oracle says ${oracle.allowed ? 'allow' : 'deny'} (${oracle.reason})\nrequest: ${JSON.stringify(request)}\nmodel: ${JSON.stringify(model)}`,
    );
}

/** Environments whose sidecars are Trellis's own Envoy (Kubernetes runs Istio's). */
const runsEnvoy = (b: Bound) => b.kind !== 'kubernetes';

const compiled = new WeakMap<object, Map<string, EnvoyArtefacts>>();

/** The compiled sidecar of `w` in the environment of `b` (compiled once per bound model). */
function sidecar(b: Bound, w: string): EnvoyArtefacts {
  const cache = compiled.get(b.model) ?? new Map<string, EnvoyArtefacts>();
  compiled.set(b.model, cache);
  const hit = cache.get(w);
  if (hit) return hit;
  const a = compileEnvoy(b.model, envoyOptions(b.model, w));
  cache.set(w, a);
  return a;
}

/**
 * An edge request through the environment's sidecars: hop 1, the edge sidecar (plaintext from
 * nginx) picks the upstream cluster; hop 2, the backend's sidecar, called with the edge's SVID.
 */
function edgePath(b: Bound, edge: string, http: ReturnType<typeof httpOf>): Decision {
  const edgeInbound = Object.values(b.model.binding.workloads[edge]?.inbound ?? {})[0];
  const hop1 = evaluateEnvoy(sidecar(b, edge).bootstrap, {
    listenerPort: edgeInbound?.port ?? 0,
    peer: { kind: 'none' },
    http,
  });
  const backend = /^routed to outbound_(.+)$/.exec(hop1.reason)?.[1];
  if (!hop1.allowed || backend === undefined) return hop1;
  const upstream = envoyOptions(b.model, edge).outbound?.[backend];
  return evaluateEnvoy(sidecar(b, backend).bootstrap, {
    listenerPort: upstream?.port ?? 0,
    peer: { kind: 'cert', spiffeId: spiffeId(b.model, edge), trusted: true },
    http,
  });
}

describe('oracle ≡ compiled targets (property tests)', () => {
  it('Istio AuthorizationPolicy + RequestAuthentication + PeerAuthentication, in every environment', () => {
    let allowedCount = 0;
    fc.assert(
      fc.property(
        modelArb,
        fc.array(meshRequestSeed(true), { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const requests = seeds.map((s) => materialize(model, s));
          const decisions = requests.map((r) => oracleFor(model, r));
          allowedCount += decisions.filter((o) => o.allowed).length;
          for (const b of bindEverywhere(model)) {
            const resources = compileIstio(b.model);
            requests.forEach((r, i) => {
              const o = decisions[i] as Decision;
              oracleKeeps(b, model, r, o);
              const t = translate(b, r);
              const got = evaluateIstio(resources, {
                namespace: namespaceOf(b.model, r.to),
                labels: { app: r.to },
                port: r.portNumber,
                peer: t.peer,
                ...httpField(t),
              });
              agree(`Istio (${b.kind})`, model, r, o, got);
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    // The generators must reach both outcomes often enough to mean something.
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 120_000);

  it('Envoy sidecar: TLS SAN match + jwt_authn + RBAC, in every environment that runs it', () => {
    let allowedCount = 0;
    fc.assert(
      fc.property(
        modelArb,
        fc.array(meshRequestSeed(), { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const requests = seeds.map((s) => materialize(model, s));
          const decisions = requests.map((r) => oracleFor(model, r));
          allowedCount += decisions.filter((o) => o.allowed).length;
          for (const b of bindEverywhere(model).filter(runsEnvoy)) {
            requests.forEach((r, i) => {
              const o = decisions[i] as Decision;
              oracleKeeps(b, model, r, o);
              const t = translate(b, r);
              const got = evaluateEnvoy(sidecar(b, r.to).bootstrap, {
                listenerPort: b.model.binding.workloads[r.to]?.inbound[r.portName]?.port ?? 0,
                peer: t.peer,
                ...httpField(t),
              });
              agree(`Envoy (${b.kind})`, model, r, o, got);
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 120_000);

  it('edge request end to end: edge sidecar routing, then the backend sidecar', () => {
    let allowedCount = 0;
    const edgeSeed = fc.record({
      method: fc.constantFrom('GET', 'POST'),
      path: fc.constantFrom('/x', '/x/1', '/y/a/z', '/', '/x/1/2'),
      token: fc.option(tokenArb(), { nil: undefined, freq: 6 }),
    });
    fc.assert(
      fc.property(
        modelArb,
        fc.array(edgeSeed, { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const edge = edgeWorkloads(model)[0] ?? 'edge';
          const decisions = seeds.map((s) =>
            allowed(model, { kind: 'edge', host: 'api.example', ...httpOf(s) }),
          );
          allowedCount += decisions.filter((o) => o.allowed).length;
          for (const b of bindEverywhere(model)) {
            seeds.forEach((s, i) => {
              const o = decisions[i] as Decision;
              const token = s.token ? b.token(s.token) : undefined;
              const http = httpOf({ ...s, token });
              const host = b.host('api.example');
              const bound = allowed(b.model, { kind: 'edge', host, ...http });
              agree(`oracle on the ${b.kind} binding (edge)`, model, s, o, bound);
              if (runsEnvoy(b))
                agree(`Envoy edge path (${b.kind})`, model, s, o, edgePath(b, edge, http));
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Non-vacuity: about 60 of 6,000 requests pass both hops (measured over runs); 20 leaves margin.
    expect(allowedCount).toBeGreaterThan(RUNS / 50);
  }, 120_000);

  it('metrics scrapes: the sidecar metrics listener (TLS SAN + RBAC + routes), in every environment that runs it', () => {
    let allowedCount = 0;
    let deniedCount = 0;
    const scrapeSeed = fc.record({
      to: fc.nat(4),
      peer: fc.constantFrom('scraper', 'scraper', 'workload', 'untrusted', 'none'),
      method: fc.constantFrom('GET', 'GET', 'POST'),
      path: fc.constantFrom('/stats/prometheus', '/metrics', '/x', '/m/1', '/stats', '/'),
    });
    fc.assert(
      fc.property(
        modelArb,
        fc.array(scrapeSeed, { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const names = Object.keys(model.workloads).sort();
          const scraper =
            scraperSpiffeId(model) ?? `spiffe://${model.trustDomain}/ns/ns/sa/prometheus`;
          const requests: ScrapeRequest[] = seeds.map((s) => {
            const to = names[s.to % names.length] ?? 'edge';
            const other = names[(s.to + 1) % names.length] ?? 'edge';
            const peer: Peer =
              s.peer === 'none'
                ? { kind: 'none' }
                : s.peer === 'untrusted'
                  ? { kind: 'cert', spiffeId: scraper, trusted: false }
                  : {
                      kind: 'cert',
                      spiffeId: s.peer === 'scraper' ? scraper : spiffeId(model, other),
                      trusted: true,
                    };
            return { kind: 'scrape', to, peer, method: s.method, path: s.path };
          });
          const decisions = requests.map((r) => allowed(model, r));
          allowedCount += decisions.filter((o) => o.allowed).length;
          deniedCount += decisions.filter((o) => !o.allowed).length;
          for (const b of bindEverywhere(model).filter(runsEnvoy)) {
            requests.forEach((r, i) => {
              const o = decisions[i] as Decision;
              const t = { ...r, peer: b.peer(r.peer) };
              agree(`oracle on the ${b.kind} binding (scrape)`, model, r, o, allowed(b.model, t));
              const got = evaluateEnvoy(sidecar(b, r.to).bootstrap, {
                listenerPort: b.model.binding.workloads[r.to]?.metrics?.port ?? 0,
                peer: t.peer,
                http: { method: r.method, path: r.path, now: NOW },
              });
              agree(`Envoy metrics listener (${b.kind})`, model, r, o, got);
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Non-vacuity: about 250 of 6,000 scrapes are allowed (measured); 100 leaves margin.
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
    expect(deniedCount).toBeGreaterThan(RUNS);
  }, 120_000);

  it('Kafka ACLs (StandardAuthorizer semantics, allow.everyone.if.no.acl.found=false)', () => {
    let allowedCount = 0;
    const kafkaSeed = fc.record({
      who: fc.nat(4),
      operation: fc.oneof(
        fc.constantFrom('READ' as const, 'WRITE' as const, 'DESCRIBE' as const),
        fc.constantFrom(...kafkaOperations),
      ),
      resource: fc.oneof(
        fc.record({
          type: fc.constant('TOPIC' as const),
          name: fc.constantFrom('orders.v1', 'orders.v2', 'ord', 'events', 'other', 'o'),
        }),
        fc.record({
          type: fc.constant('GROUP' as const),
          name: fc.constantFrom('g1', 'g', 'g1x', 'ledger', 'x'),
        }),
        fc.record({ type: fc.constant('CLUSTER' as const), name: fc.constant('kafka-cluster') }),
      ),
    });
    fc.assert(
      fc.property(
        modelArb,
        fc.array(kafkaSeed, { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const names = Object.keys(model.workloads);
          const requests = seeds.map((s) => ({
            kind: 'kafka' as const,
            identity: names[s.who] ?? 'intruder',
            operation: s.operation,
            resource: s.resource,
          }));
          const decisions = requests.map((r) => allowed(model, r));
          allowedCount += decisions.filter((o) => o.allowed).length;
          for (const b of bindEverywhere(model)) {
            const acls = compileKafkaAcls(b.model);
            requests.forEach((r, i) => {
              const o = decisions[i] as Decision;
              agree(`oracle on the ${b.kind} binding`, model, r, o, allowed(b.model, r));
              const got = evaluateKafkaAcls(acls, {
                principal: `User:${r.identity}`,
                host: '127.0.0.1',
                operation: r.operation,
                resource: r.resource,
              });
              agree(`Kafka (${b.kind})`, model, r, o, got);
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Non-vacuity: 120-150 allowed per run (measured); 40 leaves margin.
    expect(allowedCount).toBeGreaterThan(RUNS / 25);
  }, 120_000);

  it('Cassandra roles, identities and grants (keyspace → table inheritance)', () => {
    let allowedCount = 0;
    const cqlSeed = fc.record({
      who: fc.nat(4),
      keyspace: fc.constantFrom('k1', 'k2', 'k3', 'system_auth', 'system'),
      table: fc.option(fc.constantFrom('t1', 't2', 't3'), { nil: undefined }),
      permission: fc.constantFrom(...cassandraPermissions),
      // Half the requests replay a grant of the model (maybe on a table under a keyspace grant).
      fromGrant: fc.option(fc.nat(9), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        modelArb,
        fc.array(cqlSeed, { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const names = Object.keys(model.workloads);
          const requests = seeds.map((s) => {
            const grants = model.cassandra.grants;
            const g =
              s.fromGrant !== undefined && grants.length > 0
                ? grants[s.fromGrant % grants.length]
                : undefined;
            const w = g ? g.identity : names[s.who];
            const identity =
              w !== undefined ? spiffeId(model, w) : 'spiffe://other.example/ns/x/sa/y';
            const table = g ? (g.table ?? s.table) : s.table;
            return {
              identity,
              keyspace: g ? g.keyspace : s.keyspace,
              permission: g
                ? (g.permissions[s.who % g.permissions.length] ?? s.permission)
                : s.permission,
              ...(table ? { table } : {}),
            };
          });
          const decisions = requests.map((req) => allowed(model, { kind: 'cql', ...req }));
          allowedCount += decisions.filter((o) => o.allowed).length;
          for (const b of bindEverywhere(model)) {
            const state = parseCassandraAuth(compileCassandra(b.model).cql);
            requests.forEach((req, i) => {
              const o = decisions[i] as Decision;
              const peer = b.peer({ kind: 'cert', spiffeId: req.identity, trusted: true });
              const moved = {
                ...req,
                identity: peer.kind === 'cert' ? peer.spiffeId : req.identity,
              };
              const bound = allowed(b.model, { kind: 'cql', ...moved });
              agree(`oracle on the ${b.kind} binding`, model, req, o, bound);
              agree(`Cassandra (${b.kind})`, model, req, o, evaluateCassandra(state, moved));
            });
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 120_000);
});
