/**
 * The published JSON Schema (docs/schema) is current, and it agrees with the model's own validation:
 * every pattern-checked field rejects in the schema what validation rejects, and accepts what it accepts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { formatPath, modelJsonSchema, validateModel } from '../src/index.ts';
import { referenceData } from './fixtures.ts';

const published = fileURLToPath(
  new URL('../../../docs/schema/trellis-policy.schema.json', import.meta.url),
);

describe('published JSON Schema', () => {
  it('is up to date (regenerate: ./trellis policy schema --out docs/schema/trellis-policy.schema.json)', () => {
    expect(readFileSync(published, 'utf8')).toBe(`${JSON.stringify(modelJsonSchema(), null, 2)}\n`);
  });

  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(modelJsonSchema());

  it('accepts the reference model', () => {
    expect(validate(referenceData())).toBe(true);
  });

  it('rejects an unknown field and a wrong type, as an editor would show', () => {
    const d = referenceData() as Record<string, unknown>;
    d['trustDomian'] = 'typo';
    expect(validate(d)).toBe(false);
    expect(validate.errors?.map((e) => [e.keyword, e.params])).toContainEqual([
      'additionalProperties',
      { additionalProperty: 'trustDomian' },
    ]);
    const e = referenceData() as { workloads: Record<string, { ports: { port: unknown }[] }> };
    const port = e.workloads['orders-api']?.ports[0];
    if (port) port.port = 'http';
    expect(validate(e)).toBe(false);
  });
});

/** A reference-model copy, its data typed loosely enough to edit one field. */
type Data = Record<string, unknown>;
type Obj = Record<string, unknown>;
const at = (d: Data, ...keys: string[]): Obj => keys.reduce<Obj>((o, k) => o[k] as Obj, d);
const list = (d: Data, ...keys: string[]): unknown[] => {
  const last = keys[keys.length - 1] ?? '';
  return at(d, ...keys.slice(0, -1))[last] as unknown[];
};

/** One pattern-checked field: how to put a value there, where validation reports it, and samples. */
interface FieldCase {
  field: string;
  set: (d: Data, v: string) => void;
  path: (v: string) => PropertyKey[];
  accept: string[];
  reject: string[];
}

const provider = ['identityProviders', 'keycloak'];
const environmentReason = 'test data: a runner too small for the production budgets';
const getOrder = ['routes', 'get-order'];
const fieldCases: FieldCase[] = [
  {
    field: 'trustDomain',
    set: (d, v) => (d['trustDomain'] = v),
    path: () => ['trustDomain'],
    accept: ['trellis.local', 'a-b_c.d'],
    reject: ['Trellis.local', 'spiffe://trellis.local', 'td/x', 'a b'],
  },
  {
    field: 'namespace',
    set: (d, v) => (d['namespace'] = v),
    path: () => ['namespace'],
    accept: ['trellis', 'a', 'a-1'],
    reject: ['Trellis', '1abc', 'a_b', '-a', 'a-', 'a'.repeat(64)],
  },
  {
    field: 'regions key',
    set: (d, v) => (at(d, 'regions')[v] = {}),
    path: (v) => ['regions', v],
    accept: ['eu-west', 'x1'],
    reject: ['EU', 'eu_west', '1eu'],
  },
  {
    field: 'identityProviders key',
    set: (d, v) => (at(d, 'identityProviders')[v] = structuredClone(at(d, ...provider))),
    path: (v) => ['identityProviders', v],
    accept: ['other-idp'],
    reject: ['Other', 'my_idp'],
  },
  ...(['issuer', 'jwksUri'] as const).map((f): FieldCase => ({
    field: `identityProviders.*.${f}`,
    set: (d, v) => (at(d, ...provider)[f] = v),
    path: () => [...provider, f],
    accept: [
      'https://idp.example/realms/x',
      'http://localhost:8180/realms/trellis',
      'http://127.0.0.1/r',
      'http://[::1]:8080/r',
      'HTTP://LocalHost/r',
    ],
    reject: ['http://idp.example/realms/x', 'http://localhost.evil.example/x', 'ftp://localhost/x'],
  })),
  {
    field: 'identityProviders.*.scopes[]',
    set: (d, v) => list(d, ...provider, 'scopes').push(v),
    path: () => [...provider, 'scopes', 2],
    accept: ['orders:admin', 'a.b/c'],
    reject: ['orders read', 'orders:*', 'tab\there'],
  },
  {
    field: 'identityProviders.*.roles.*.scopes[]',
    set: (d, v) => list(d, ...provider, 'roles', 'order-reader', 'scopes').push(v),
    path: () => [...provider, 'roles', 'order-reader', 'scopes', 1],
    accept: ['orders:write'],
    reject: ['orders:*', 'orders read'],
  },
  {
    field: 'workloads key',
    set: (d, v) =>
      (at(d, 'workloads')[v] = { ports: [{ name: 'http', port: 9000, protocol: 'http' }] }),
    path: (v) => ['workloads', v],
    accept: ['batch-writer'],
    reject: ['Batch', 'cassandra', 'kafka', 'a_b'],
  },
  {
    field: 'workloads.*.namespace',
    set: (d, v) => (at(d, 'workloads', 'ledger')['namespace'] = v),
    path: () => ['workloads', 'ledger', 'namespace'],
    accept: ['finance'],
    reject: ['Finance', 'fin_ance'],
  },
  {
    field: 'workloads.*.serviceAccount',
    set: (d, v) => (at(d, 'workloads', 'ledger')['serviceAccount'] = v),
    path: () => ['workloads', 'ledger', 'serviceAccount'],
    accept: ['ledger-sa'],
    reject: ['cassandra', 'kafka', 'Ledger'],
  },
  {
    field: 'workloads.*.calls[]',
    set: (d, v) => list(d, 'workloads', 'orders-api', 'calls').push(v),
    path: () => ['workloads', 'orders-api', 'calls', 2],
    accept: ['ledger'],
    reject: ['*', 'Ledger', 'led ger'],
  },
  {
    field: 'routes key',
    set: (d, v) =>
      (at(d, 'routes')[v] = { ...structuredClone(at(d, ...getOrder)), path: '/new/{id}' }),
    path: (v) => ['routes', v],
    accept: ['list-orders'],
    reject: ['ListOrders', 'list_orders'],
  },
  {
    field: 'routes.*.hosts[]',
    set: (d, v) => list(d, ...getOrder, 'hosts').push(v),
    path: () => [...getOrder, 'hosts', 1],
    accept: ['api.example.com'],
    reject: ['*.example.com', '*'],
  },
  {
    field: 'routes.*.path',
    set: (d, v) => (at(d, ...getOrder)['path'] = v),
    path: () => [...getOrder, 'path'],
    accept: ['/orders/{id}/items', '/', '/a.b/{x}', '/v1/orders/{order_id}'],
    reject: ['orders', '/orders/', '/orders/../x', '/./x', '/orders/{1d}', '/a b', '/o/{id}/..'],
  },
  {
    field: 'routes.*.backend',
    set: (d, v) => (at(d, ...getOrder)['backend'] = v),
    path: () => [...getOrder, 'backend'],
    accept: ['orders-api'],
    reject: ['Orders-api', 'cassandra', '*'],
  },
  {
    field: 'routes.*.auth.provider',
    set: (d, v) => (at(d, ...getOrder, 'auth')['provider'] = v),
    path: () => [...getOrder, 'auth', 'provider'],
    accept: ['keycloak'],
    reject: ['Keycloak', '*'],
  },
  {
    field: 'routes.*.auth.scopes[]',
    set: (d, v) => list(d, ...getOrder, 'auth', 'scopes').push(v),
    path: () => [...getOrder, 'auth', 'scopes', 1],
    accept: ['orders:write'],
    reject: ['orders:*', 'a b'],
  },
  {
    field: 'routes.*.auth.claims key',
    set: (d, v) => (at(d, ...getOrder, 'auth')['claims'] = { [v]: ['gold'] }),
    path: (v) => [...getOrder, 'auth', 'claims', v],
    accept: ['tier', 'org.team', 'realm_access.roles'],
    reject: ['1tier', 'ti er', 't*'],
  },
  {
    field: 'routes.*.auth.claims.*[]',
    set: (d, v) => (at(d, ...getOrder, 'auth')['claims'] = { tier: [v] }),
    path: () => [...getOrder, 'auth', 'claims', 'tier', 0],
    accept: ['gold'],
    reject: ['*', 'gold*'],
  },
  {
    field: 'cassandra.keyspaces key',
    set: (d, v) => (at(d, 'cassandra', 'keyspaces')[v] = { tables: [] }),
    path: (v) => ['cassandra', 'keyspaces', v],
    accept: ['audit', '_x'],
    reject: ['system', 'system_auth', 'Audit', '1ks', 'a-b'],
  },
  {
    field: 'cassandra.keyspaces.*.tables[]',
    set: (d, v) => list(d, 'cassandra', 'keyspaces', 'orders', 'tables').push(v),
    path: () => ['cassandra', 'keyspaces', 'orders', 'tables', 1],
    accept: ['order_items'],
    reject: ['Orders', 'order-items', '1t'],
  },
  ...(
    [
      ['identity', ['orders-api'], ['*', 'Orders', 'kafka']],
      ['keyspace', ['orders'], ['system', 'SYSTEM_AUTH', '*', 'Orders']],
      ['table', ['orders'], ['Orders', 'o-rders']],
    ] as const
  ).map(([f, accept, reject]): FieldCase => ({
    field: `cassandra.grants[].${f}`,
    set: (d, v) => ((list(d, 'cassandra', 'grants')[0] as Obj)[f] = v),
    path: () => ['cassandra', 'grants', 0, f],
    accept: [...accept],
    reject: [...reject],
  })),
  {
    field: 'kafka.topics key',
    set: (d, v) => (at(d, 'kafka', 'topics')[v] = { producers: [], consumers: [] }),
    path: (v) => ['kafka', 'topics', v],
    accept: ['audit.v1', 'a_b-C'],
    reject: ['.', '..', 'a b', 't*', 'x'.repeat(250)],
  },
  {
    field: 'kafka.topics.*.producers[]',
    set: (d, v) => (at(d, 'kafka', 'topics', 'orders.v1')['producers'] = [v]),
    path: () => ['kafka', 'topics', 'orders.v1', 'producers', 0],
    accept: ['orders-api'],
    reject: ['*', 'Orders-api'],
  },
  ...(
    [
      ['identity', ['ledger'], ['*', 'Ledger']],
      ['group', ['ledger-v2', 'a.b_C'], ['*', 'a b', 'grp/1']],
    ] as const
  ).map(([f, accept, reject]): FieldCase => ({
    field: `kafka.topics.*.consumers[].${f}`,
    set: (d, v) => ((list(d, 'kafka', 'topics', 'orders.v1', 'consumers')[0] as Obj)[f] = v),
    path: () => ['kafka', 'topics', 'orders.v1', 'consumers', 0, f],
    accept: [...accept],
    reject: [...reject],
  })),
  {
    field: 'agents key',
    set: (d, v) => (at(d, 'agents')[v] = structuredClone(at(d, 'agents', 'reporting-bot'))),
    path: (v) => ['agents', v],
    accept: ['audit-bot'],
    reject: ['AuditBot', 'audit_bot'],
  },
  {
    field: 'agents.*.provider',
    set: (d, v) => (at(d, 'agents', 'reporting-bot')['provider'] = v),
    path: () => ['agents', 'reporting-bot', 'provider'],
    accept: ['keycloak'],
    reject: ['Keycloak', '*'],
  },
  {
    field: 'agents.*.scopes[]',
    set: (d, v) => list(d, 'agents', 'reporting-bot', 'scopes').push(v),
    path: () => ['agents', 'reporting-bot', 'scopes', 1],
    accept: ['orders:write'],
    reject: ['orders:*', 'a b'],
  },
  {
    field: 'budgets.environments key',
    set: (d, v) =>
      (at(d, 'budgets')['environments'] = {
        [v]: { justification: environmentReason, mesh: { p50Ms: 2, p99Ms: 20 } },
      }),
    path: (v) => ['budgets', 'environments', v],
    accept: ['ci', 'small-runner'],
    reject: ['production', 'CI', 'ci_runner', '1ci'],
  },
  {
    field: 'budgets.environments.*.routes key',
    set: (d, v) =>
      (at(d, 'budgets')['environments'] = {
        ci: { justification: environmentReason, routes: { [v]: { rps: 5, p99Ms: 30 } } },
      }),
    path: (v) => ['budgets', 'environments', 'ci', 'routes', v],
    accept: ['get-order'],
    reject: ['Get-order', 'get_order'],
  },
];

describe('field patterns: validation and the published JSON Schema agree', () => {
  const schema = new Ajv2020({ strict: false, allErrors: true }).compile(modelJsonSchema());
  const edited = (c: FieldCase, v: string) => {
    const d = referenceData() as Data;
    c.set(d, v);
    return d;
  };

  it.each(fieldCases.map((c) => [c.field, c] as const))('%s', (_field, c) => {
    for (const v of c.accept) {
      const d = edited(c, v);
      expect(validateModel(d).errors, `validation accepts ${JSON.stringify(v)}`).toEqual([]);
      expect(schema(d), `JSON Schema accepts ${JSON.stringify(v)}`).toBe(true);
    }
    for (const v of c.reject) {
      const d = edited(c, v);
      expect(
        validateModel(d).errors.map((e) => e.path),
        `validation rejects ${JSON.stringify(v)}`,
      ).toContain(formatPath(c.path(v)));
      expect(schema(d), `JSON Schema rejects ${JSON.stringify(v)}`).toBe(false);
      // The schema refuses it for its pattern, not for some other reason.
      expect(schema.errors?.map((e) => e.keyword)).toContain('pattern');
    }
  });
});
