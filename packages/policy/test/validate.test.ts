import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatPath, parseModel, validateModel } from '../src/index.ts';
import type { PolicyError } from '../src/index.ts';
import { referenceData, referenceText } from './fixtures.ts';

type Data = Record<string, unknown>;
type Key = string | number;

/** The container at `path` inside raw model data. */
function at(d: Data, path: Key[]): Record<Key, unknown> {
  let cur: unknown = d;
  for (const k of path) cur = (cur as Record<Key, unknown>)[k];
  return cur as Record<Key, unknown>;
}
const set = (d: Data, path: Key[], value: unknown) => {
  at(d, path.slice(0, -1))[path[path.length - 1] ?? ''] = value;
};
const del = (d: Data, path: Key[]) => {
  delete at(d, path.slice(0, -1))[path[path.length - 1] ?? ''];
};
const push = (d: Data, path: Key[], value: unknown) => {
  (at(d, path) as unknown as unknown[]).push(value);
};

const dnsReason =
  "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters";

/** One kind of invalid model: how to break the reference, and the one error that must come out. */
interface Case {
  kind: string;
  mutate: (d: Data) => void;
  error: PolicyError;
  /** Other errors may come with it (e.g. both routes become unreachable). */
  only?: false;
}

const cases: Case[] = [
  {
    kind: 'unknown field',
    mutate: (d) => set(d, ['workloads', 'orders-api', 'prots'], [1]),
    error: { path: 'workloads.orders-api.prots', reason: 'unknown field' },
  },
  {
    kind: 'missing required field',
    mutate: (d) => del(d, ['trustDomain']),
    error: { path: 'trustDomain', reason: 'required field is missing' },
  },
  {
    kind: 'wrong type',
    mutate: (d) => set(d, ['workloads', 'orders-api', 'ports', 0, 'port'], '8080'),
    error: {
      path: 'workloads.orders-api.ports[0].port',
      reason: 'expected a number, got string "8080"',
    },
  },
  {
    kind: 'port out of range',
    mutate: (d) => set(d, ['workloads', 'orders-api', 'ports', 0, 'port'], 70000),
    error: { path: 'workloads.orders-api.ports[0].port', reason: 'must be at most 65535' },
  },
  {
    kind: 'unknown protocol',
    mutate: (d) => set(d, ['workloads', 'ledger', 'ports', 0, 'protocol'], 'udp'),
    error: {
      path: 'workloads.ledger.ports[0].protocol',
      reason: 'must be one of: "http", "grpc", "tcp"',
    },
  },
  {
    kind: 'trust domain with a scheme',
    mutate: (d) => set(d, ['trustDomain'], 'spiffe://trellis.local'),
    error: {
      path: 'trustDomain',
      reason:
        "must be a SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_', no scheme",
    },
  },
  {
    kind: 'workload name not a DNS label',
    mutate: (d) =>
      set(d, ['workloads', 'Bad_Name'], {
        ports: [{ name: 'http', port: 9000, protocol: 'http' }],
      }),
    error: { path: 'workloads.Bad_Name', reason: dnsReason },
  },
  {
    kind: 'workload named like a data service',
    mutate: (d) =>
      set(d, ['workloads', 'kafka'], { ports: [{ name: 'tcp', port: 9000, protocol: 'tcp' }] }),
    error: { path: 'workloads.kafka', reason: 'name is reserved for a data service' },
  },
  {
    kind: 'unknown reference in calls',
    mutate: (d) => push(d, ['workloads', 'ingress', 'calls'], 'payments'),
    error: {
      path: 'workloads.ingress.calls[1]',
      reason: "unknown reference: no workload or data service named 'payments'",
    },
  },
  {
    kind: 'wildcard principal in calls',
    mutate: (d) => push(d, ['workloads', 'ingress', 'calls'], '*'),
    error: {
      path: 'workloads.ingress.calls[1]',
      reason: 'wildcard principals are not allowed: name each identity',
    },
  },
  {
    kind: 'calling the edge workload',
    mutate: (d) => push(d, ['workloads', 'ledger', 'calls'], 'ingress'),
    error: {
      path: 'workloads.ledger.calls[2]',
      reason: "'ingress' is an edge workload: it accepts no mesh traffic",
    },
  },
  {
    kind: 'duplicate port number',
    mutate: (d) =>
      push(d, ['workloads', 'orders-api', 'ports'], {
        name: 'admin',
        port: 8080,
        protocol: 'http',
      }),
    error: {
      path: 'workloads.orders-api.ports[1].port',
      reason: 'duplicate port 8080 (also workloads.orders-api.ports[0])',
    },
  },
  {
    kind: 'duplicate port name',
    mutate: (d) =>
      push(d, ['workloads', 'orders-api', 'ports'], { name: 'http', port: 9090, protocol: 'grpc' }),
    error: {
      path: 'workloads.orders-api.ports[1].name',
      reason: "duplicate port name 'http' (also workloads.orders-api.ports[0])",
    },
  },
  {
    kind: 'grant on a Cassandra system keyspace',
    mutate: (d) => set(d, ['cassandra', 'grants', 0, 'keyspace'], 'system_auth'),
    error: {
      path: 'cassandra.grants[0].keyspace',
      reason: "grants on Cassandra system keyspace 'system_auth' are not allowed",
    },
  },
  {
    kind: 'declaring a system keyspace',
    mutate: (d) => set(d, ['cassandra', 'keyspaces', 'system_schema'], {}),
    error: {
      path: 'cassandra.keyspaces.system_schema',
      reason: "'system_schema' is a Cassandra system keyspace and cannot be declared",
    },
  },
  {
    kind: 'grant on an undeclared keyspace',
    mutate: (d) => set(d, ['cassandra', 'grants', 1, 'keyspace'], 'billing'),
    error: {
      path: 'cassandra.grants[1].keyspace',
      reason: "unknown reference: keyspace 'billing' is not declared in cassandra.keyspaces",
    },
  },
  {
    kind: 'CREATE granted on a table',
    mutate: (d) =>
      push(d, ['cassandra', 'grants'], {
        identity: 'ledger',
        keyspace: 'ledger',
        table: 'order_entries',
        permissions: ['SELECT', 'CREATE'],
      }),
    error: {
      path: 'cassandra.grants[3].permissions[1]',
      reason: 'CREATE applies to a keyspace, not a table',
    },
  },
  {
    kind: 'grant to a workload that does not call cassandra',
    mutate: (d) =>
      push(d, ['cassandra', 'grants'], {
        identity: 'ingress',
        keyspace: 'orders',
        permissions: ['SELECT'],
      }),
    error: {
      path: 'cassandra.grants[3].identity',
      reason: "workloads.ingress does not list 'cassandra' in calls",
    },
  },
  {
    kind: 'wildcard principal in a grant',
    mutate: (d) => set(d, ['cassandra', 'grants', 0, 'identity'], '*'),
    error: {
      path: 'cassandra.grants[0].identity',
      reason: 'wildcard principals are not allowed: name each identity',
    },
  },
  {
    kind: 'route without authentication',
    mutate: (d) => del(d, ['routes', 'create-order', 'auth']),
    error: {
      path: 'routes.create-order.auth',
      reason:
        'route has no authentication: every route names a provider and required scopes or claims',
    },
  },
  {
    kind: 'route that any token passes',
    mutate: (d) => set(d, ['routes', 'create-order', 'auth', 'scopes'], []),
    error: {
      path: 'routes.create-order.auth',
      reason: 'route requires no scope or claim, so any valid token would pass: name at least one',
    },
  },
  {
    kind: 'route scope the provider does not issue',
    mutate: (d) => set(d, ['routes', 'create-order', 'auth', 'scopes'], ['orders:delete']),
    error: {
      path: 'routes.create-order.auth.scopes[0]',
      reason: "unknown reference: provider 'keycloak' does not declare scope 'orders:delete'",
    },
  },
  {
    kind: 'route with an unknown provider',
    mutate: (d) => set(d, ['routes', 'get-order', 'auth', 'provider'], 'okta'),
    error: {
      path: 'routes.get-order.auth.provider',
      reason: "unknown reference: no identity provider named 'okta'",
    },
  },
  {
    kind: 'route to an unknown backend',
    mutate: (d) => set(d, ['routes', 'get-order', 'backend'], 'catalog'),
    error: {
      path: 'routes.get-order.backend',
      reason: "unknown reference: no workload named 'catalog'",
    },
  },
  {
    kind: 'route on an unknown port',
    mutate: (d) => set(d, ['routes', 'get-order', 'port'], 'grpc'),
    error: {
      path: 'routes.get-order.port',
      reason: "unknown reference: workloads.orders-api has no port named 'grpc'",
    },
  },
  {
    kind: 'unreachable route',
    mutate: (d) => set(d, ['workloads', 'ingress', 'calls'], ['ledger']),
    error: {
      path: 'routes.create-order.backend',
      reason: "no edge workload calls 'orders-api', so the route is unreachable",
    },
    only: false,
  },
  {
    kind: 'routes to one backend on two ports',
    mutate: (d) => {
      push(d, ['workloads', 'orders-api', 'ports'], {
        name: 'admin',
        port: 9090,
        protocol: 'http',
      });
      set(d, ['routes', 'get-order', 'port'], 'admin');
    },
    error: {
      path: 'routes.get-order.port',
      reason:
        "routes.create-order reaches orders-api on port 'http': the edge has one upstream per backend",
    },
    only: false,
  },
  {
    kind: 'bad path template',
    mutate: (d) => set(d, ['routes', 'get-order', 'path'], '/orders/{id'),
    error: {
      path: 'routes.get-order.path',
      reason:
        "must be a path template starting with '/': segments of letters, digits and ._~- or a {param}",
    },
  },
  {
    kind: 'duplicate route',
    mutate: (d) => set(d, ['routes', 'create-order-2'], { ...at(d, ['routes', 'create-order']) }),
    error: {
      path: 'routes.create-order-2',
      reason: 'same backend, port, method and path as routes.create-order',
    },
  },
  {
    kind: 'PERMISSIVE mTLS without justification',
    mutate: (d) => set(d, ['mtls'], { mode: 'PERMISSIVE' }),
    error: {
      path: 'mtls.justification',
      reason: 'PERMISSIVE mTLS needs a written justification (at least 20 characters)',
    },
  },
  {
    kind: 'PERMISSIVE mTLS on a workload with a token justification',
    mutate: (d) =>
      set(d, ['workloads', 'ledger', 'mtls'], { mode: 'PERMISSIVE', justification: 'legacy' }),
    error: {
      path: 'workloads.ledger.mtls.justification',
      reason: 'PERMISSIVE mTLS needs a written justification (at least 20 characters)',
    },
  },
  {
    kind: 'plain-http issuer off loopback',
    mutate: (d) =>
      set(d, ['identityProviders', 'keycloak', 'issuer'], 'http://idp.example.com/realms/trellis'),
    error: {
      path: 'identityProviders.keycloak.issuer',
      reason: 'must use https (http is allowed only for a loopback host)',
    },
  },
  {
    kind: 'role granting an undeclared scope',
    mutate: (d) =>
      push(d, ['identityProviders', 'keycloak', 'roles', 'order-reader', 'scopes'], 'admin'),
    error: {
      path: 'identityProviders.keycloak.roles.order-reader.scopes[1]',
      reason:
        "unknown reference: scope 'admin' is not declared in identityProviders.keycloak.scopes",
    },
  },
  {
    kind: 'Kafka producer that does not call kafka',
    mutate: (d) => push(d, ['kafka', 'topics', 'orders.v1', 'producers'], 'ingress'),
    error: {
      path: 'kafka.topics["orders.v1"].producers[1]',
      reason: "workloads.ingress does not list 'kafka' in calls",
    },
  },
  {
    kind: 'wildcard consumer group',
    mutate: (d) => set(d, ['kafka', 'topics', 'orders.v1', 'consumers', 0, 'group'], '*'),
    error: {
      path: 'kafka.topics["orders.v1"].consumers[0].group',
      reason: 'wildcard groups are not allowed: name each group',
    },
  },
  {
    kind: 'agent scope the provider does not issue',
    mutate: (d) => push(d, ['agents', 'reporting-bot', 'scopes'], 'orders:admin'),
    error: {
      path: 'agents.reporting-bot.scopes[1]',
      reason: "unknown reference: provider 'keycloak' does not declare scope 'orders:admin'",
    },
  },
  {
    kind: 'rate limit burst below the rate',
    mutate: (d) =>
      set(d, ['routes', 'get-order', 'rateLimit'], { requestsPerSecond: 100, burst: 10 }),
    error: {
      path: 'routes.get-order.rateLimit.burst',
      reason: 'burst must be at least requestsPerSecond (the bucket refills once a second)',
    },
  },
  {
    kind: 'budget p50 above p99',
    mutate: (d) => set(d, ['budgets', 'mesh', 'p50Ms'], 2),
    error: { path: 'budgets.mesh.p50Ms', reason: 'p50 must not exceed p99' },
  },
  {
    kind: 'no region',
    mutate: (d) => set(d, ['regions'], {}),
    error: { path: 'regions', reason: 'declare at least one region' },
  },
];

describe('the reference model', () => {
  it('is valid', () => {
    const r = parseModel(referenceText);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
  });
});

describe('invalid models', () => {
  it(`cover at least 15 kinds (${cases.length})`, () => {
    expect(new Set(cases.map((c) => c.kind)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  for (const c of cases)
    it(`rejects: ${c.kind}`, () => {
      const d: Data = referenceData();
      c.mutate(d);
      // Through YAML, as the CLI sees it, and as plain data.
      for (const r of [parseModel(stringify(d)), validateModel(d)]) {
        expect(r.ok).toBe(false);
        expect(r.model).toBeUndefined();
        if (c.only === false) expect(r.errors).toContainEqual(c.error);
        else expect(r.errors).toEqual([c.error]);
      }
    });

  it('reports a YAML syntax error with its position', () => {
    const r = parseModel('version: 1\nworkloads: [\n');
    expect(r.ok).toBe(false);
    expect(r.errors[0]?.path).toBe('(root)');
    expect(r.errors[0]?.reason).toMatch(/^YAML syntax error at line \d+, column \d+: /);
  });

  it('reports duplicate YAML keys', () => {
    const r = parseModel('version: 1\nversion: 1\n');
    expect(r.errors[0]?.reason).toMatch(
      /^YAML syntax error at line 2, column 1: Map keys must be unique/,
    );
  });

  it('rejects a root that is not a mapping', () => {
    expect(parseModel('- a\n- b\n').errors).toEqual([
      { path: '(root)', reason: 'the model must be a mapping (an object)' },
    ]);
    expect(validateModel(null).errors).toEqual([
      { path: '(root)', reason: 'the model must be a mapping (an object)' },
    ]);
  });
});

describe('formatPath', () => {
  it('quotes keys that are not plain names', () => {
    expect(formatPath(['kafka', 'topics', 'orders.v1', 'producers', 0])).toBe(
      'kafka.topics["orders.v1"].producers[0]',
    );
    expect(formatPath(['workloads', 'orders-api', 'calls', 2])).toBe(
      'workloads.orders-api.calls[2]',
    );
    expect(formatPath([])).toBe('(root)');
  });
});

describe('values that are not plain data', () => {
  // Found by the fuzz test: zod's length check could not print a null-prototype object and the
  // whole model came back as an "internal error" instead of an error at the field.
  it('a null-prototype object in a list of scopes is an error at that field', () => {
    const d = referenceData() as { agents: Record<string, { scopes: unknown[] }> };
    const agent = Object.keys(d.agents)[0] ?? '';
    (d.agents[agent] as { scopes: unknown[] }).scopes = [{ length: Object.create(null) }];
    const r = validateModel(d);
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.path)).toContain(`agents.${agent}.scopes[0]`);
    expect(r.errors.some((e) => e.reason.startsWith('internal error'))).toBe(false);
  });

  it('a function anywhere is refused as not plain data', () => {
    const r = validateModel({ ...(referenceData() as object), extra: () => 1 });
    expect(r.ok).toBe(false);
    expect(r.errors[0]?.reason).toMatch(/^the model must be plain data: /);
  });
});
