/**
 * The equivalence proofs: for generated models and requests, each compiled target, evaluated with that
 * system's documented semantics, decides as the oracle does. ≥ 1,000 models per property, several
 * requests per model.
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
  exampleEnvoyOptions,
  kafkaOperations,
  parseCassandraAuth,
  spiffeId,
  edgeWorkloads,
  cassandraPermissions,
} from '../src/index.ts';
import type { AccessRequest, Decision, Token, ValidModel } from '../src/index.ts';
import { NOW, materialize, meshRequestSeed, modelArb, tokenArb } from './arbitraries.ts';
import type { MeshRequest } from './arbitraries.ts';

const RUNS = 1000;
const PER_MODEL = 6;

/** The HTTP part of a request as the oracle and every evaluator take it, at the fixed NOW. */
function httpOf(r: { method: string; path: string; token?: Token | undefined }) {
  return { method: r.method, path: r.path, now: NOW, ...(r.token ? { token: r.token } : {}) };
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

describe('oracle ≡ compiled targets (property tests)', () => {
  it('Istio AuthorizationPolicy + RequestAuthentication + PeerAuthentication', () => {
    let allowedCount = 0;
    fc.assert(
      fc.property(
        modelArb,
        fc.array(meshRequestSeed(true), { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const resources = compileIstio(model);
          for (const s of seeds) {
            const r = materialize(model, s);
            const o = oracleFor(model, r);
            if (o.allowed) allowedCount++;
            const got = evaluateIstio(resources, {
              namespace: model.namespace,
              labels: { app: r.to },
              port: r.portNumber,
              peer: r.peer,
              ...httpField(r),
            });
            agree('Istio', model, r, o, got);
          }
        },
      ),
      { numRuns: RUNS },
    );
    // The generators must reach both outcomes often enough to mean something.
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 60_000);

  it('Envoy sidecar: TLS SAN match + jwt_authn + RBAC', () => {
    let allowedCount = 0;
    fc.assert(
      fc.property(
        modelArb,
        fc.array(meshRequestSeed(), { minLength: PER_MODEL, maxLength: PER_MODEL }),
        (model, seeds) => {
          const boots = new Map<string, ReturnType<typeof compileEnvoy>>();
          for (const s of seeds) {
            const r = materialize(model, s);
            let a = boots.get(r.to);
            if (!a) {
              a = compileEnvoy(model, exampleEnvoyOptions(model, r.to, '/srv'));
              boots.set(r.to, a);
            }
            const o = oracleFor(model, r);
            if (o.allowed) allowedCount++;
            const got = evaluateEnvoy(a.bootstrap, {
              listenerPort: r.portNumber + 10000,
              peer: r.peer,
              ...httpField(r),
            });
            agree('Envoy', model, r, o, got);
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 60_000);

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
          const edgeBoot = compileEnvoy(model, exampleEnvoyOptions(model, edge, '/srv')).bootstrap;
          for (const s of seeds) {
            const http = httpOf(s);
            const o = allowed(model, { kind: 'edge', host: 'api.example', ...http });
            if (o.allowed) allowedCount++;
            // Hop 1: the edge sidecar (plaintext from nginx) picks the upstream cluster.
            const hop1 = evaluateEnvoy(edgeBoot, {
              listenerPort: 8443 + 10000,
              peer: { kind: 'none' },
              http,
            });
            let got = hop1;
            const backend = /^routed to outbound_(.+)$/.exec(hop1.reason)?.[1];
            if (hop1.allowed && backend !== undefined) {
              // Hop 2: the backend sidecar, called with the edge's SVID.
              const opts = exampleEnvoyOptions(model, edge, '/srv');
              const upstream = opts.outbound?.[backend];
              const boot = compileEnvoy(
                model,
                exampleEnvoyOptions(model, backend, '/srv'),
              ).bootstrap;
              got = evaluateEnvoy(boot, {
                listenerPort: upstream?.port ?? 0,
                peer: { kind: 'cert', spiffeId: spiffeId(model, edge), trusted: true },
                http,
              });
            }
            agree('Envoy edge path', model, s, o, got);
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Non-vacuity: about 60 of 6,000 requests pass both hops (measured over runs); 20 leaves margin.
    expect(allowedCount).toBeGreaterThan(RUNS / 50);
  }, 60_000);

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
          const acls = compileKafkaAcls(model);
          const names = Object.keys(model.workloads);
          for (const s of seeds) {
            const identity = names[s.who] ?? 'intruder';
            const o = allowed(model, {
              kind: 'kafka',
              identity,
              operation: s.operation,
              resource: s.resource,
            });
            if (o.allowed) allowedCount++;
            const got = evaluateKafkaAcls(acls, {
              principal: `User:${identity}`,
              host: '127.0.0.1',
              operation: s.operation,
              resource: s.resource,
            });
            agree('Kafka', model, s, o, got);
          }
        },
      ),
      { numRuns: RUNS },
    );
    // Non-vacuity: 120-150 allowed per run (measured); 40 leaves margin.
    expect(allowedCount).toBeGreaterThan(RUNS / 25);
  }, 60_000);

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
          const state = parseCassandraAuth(compileCassandra(model).cql);
          const names = Object.keys(model.workloads);
          for (const s of seeds) {
            const grants = model.cassandra.grants;
            const g =
              s.fromGrant !== undefined && grants.length > 0
                ? grants[s.fromGrant % grants.length]
                : undefined;
            const w = g ? g.identity : names[s.who];
            const identity =
              w !== undefined ? spiffeId(model, w) : 'spiffe://other.example/ns/x/sa/y';
            const table = g ? (g.table ?? s.table) : s.table;
            const req = {
              identity,
              keyspace: g ? g.keyspace : s.keyspace,
              permission: g
                ? (g.permissions[s.who % g.permissions.length] ?? s.permission)
                : s.permission,
              ...(table ? { table } : {}),
            };
            const o = allowed(model, { kind: 'cql', ...req });
            if (o.allowed) allowedCount++;
            agree('Cassandra', model, req, o, evaluateCassandra(state, req));
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(allowedCount).toBeGreaterThan(RUNS / 10);
  }, 60_000);
});
