// Unit tests of the data layer's pure pieces: the port plan, the generated Kafka and Cassandra
// settings, and how CQL grants and Kafka ACLs are diffed and applied.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cassandraConfig, commitlogConfig, kafkaProperties } from '@trellis/local/harness';
import { cqlOf, planUpdate, undoStatement } from '@trellis/components/local/cassandra-impl';
import { systemKeyspaceGrants } from '@trellis/components/local/cassandra';
import {
  aclsKey,
  normalizeAcls,
  planAcls,
  toAclEntry,
  topicsKey,
} from '@trellis/components/local/kafka-impl';
import {
  kafkaAuthProperties,
  kafkaPrincipal,
  workloadListenerName,
} from '@trellis/components/local/kafka';
import {
  bindOrThrow,
  callersOf,
  compileCassandra,
  compileKafkaAcls,
  localPortsAt,
  parseModel,
  validateModel,
  type KafkaAclBinding,
  type ValidModel,
} from '@trellis/policy';
import { localEnvironment } from '../src/context.ts';
import { planDataPorts, platformAdminSpiffeId } from '../src/data.ts';

function model(file: string): ValidModel {
  const text = readFileSync(
    fileURLToPath(new URL(`./fixtures/data/${file}`, import.meta.url)),
    'utf8',
  );
  const r = parseModel(text);
  if (!r.ok) throw new Error(`${file} is invalid`);
  return r.model;
}

const A = model('model-a.yaml');
const B = model('model-b.yaml');
/** `m` bound to a stack at `base`. */
const local = (m: ValidModel, base = 8000) =>
  bindOrThrow(m, localEnvironment(base, '/stack'), `stack at ${base}`);

describe('port plan', () => {
  it('gives each calling workload a sidecar egress port per data service and Kafka its own listener', () => {
    // Workloads sorted: ingress 0, ledger 1, orders-api 2.
    const plan = planDataPorts(local(A));
    expect(plan.egress).toEqual([
      {
        workload: 'ledger',
        service: 'cassandra',
        listenPort: 8710,
        upstream: { host: '127.0.0.1', port: 8042 },
        serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra',
      },
      {
        workload: 'orders-api',
        service: 'cassandra',
        listenPort: 8720,
        upstream: { host: '127.0.0.1', port: 8042 },
        serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra',
      },
      {
        workload: 'ledger',
        service: 'kafka',
        listenPort: 8711,
        upstream: { host: '127.0.0.1', port: 8302 },
        serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/kafka',
      },
      {
        workload: 'orders-api',
        service: 'kafka',
        listenPort: 8721,
        upstream: { host: '127.0.0.1', port: 8303 },
        serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/kafka',
      },
    ]);
    // Each listener advertises exactly the sidecar egress port that dials it.
    for (const l of plan.kafkaListeners) {
      const e = plan.egress.find((x) => x.service === 'kafka' && x.workload === l.workload);
      expect(l.advertised).toBe(`127.0.0.1:${e?.listenPort}`);
      expect(l.port).toBe(e?.upstream.port);
    }
    expect(local(A).binding.dataServices.kafka?.endpoint).toEqual({
      address: '127.0.0.1',
      port: 8300,
    });
  });

  it('only plans egress for workloads that call the data service', () => {
    expect(callersOf(A, 'cassandra')).toEqual(['ledger', 'orders-api']);
    expect(planDataPorts(local(A)).egress.map((e) => e.workload)).not.toContain('ingress');
  });

  it('never hands out a port twice, nor one of another range, for up to 10 workloads', () => {
    // Ten workloads, every backend calling both data services and every other backend.
    const data = structuredClone(A) as unknown as {
      workloads: Record<string, { ports: unknown[]; calls?: string[]; edge?: boolean }>;
    };
    for (let i = 0; i < 7; i++)
      data.workloads[`w${i}`] = { ports: [{ name: 'http', port: 9000 + i, protocol: 'http' }] };
    const backends = Object.keys(data.workloads).filter((w) => !data.workloads[w]?.edge);
    for (const w of backends)
      (data.workloads[w] as { calls: string[] }).calls = [
        'cassandra',
        'kafka',
        ...backends.filter((o) => o !== w),
      ];
    const r = validateModel(data);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const bound = local(r.model, 20_000);
    const p = localPortsAt(20_000);
    const fixed = Object.entries(p)
      .filter(([k]) => !k.endsWith('From'))
      .map(([, v]) => v);
    const handedOut = [
      p.kafkaClientsFrom,
      ...planDataPorts(bound).kafkaListeners.map((l) => l.port),
      ...Object.values(bound.binding.workloads).flatMap((b) =>
        [
          b.admin,
          ...Object.values(b.inbound),
          ...Object.values(b.app),
          ...Object.values(b.egress).map((e) => e.listen),
          ...Object.values(b.peers).map((e) => e.listen),
        ].flatMap((e) => (e ? [e.port] : [])),
      ),
    ];
    // Kafka's direct and 9 client listeners; 10 admins, 10 inbound, 9 apps; 9 × (2 data + 8 peers).
    expect(handedOut).toHaveLength(1 + 9 + 10 + 10 + 9 + 9 * 10);
    const all = [...fixed, ...handedOut];
    expect(new Set(all).size).toBe(all.length);
    for (const port of handedOut) expect(port).toBeLessThan(p.appFrom + 100);
  });
});

describe('Kafka settings', () => {
  const props = kafkaProperties(
    {
      dir: '/d',
      tls: { keystore: '/k.pem', truststore: '/t.pem' },
      spiffePrincipals: true,
      listeners: [
        { name: workloadListenerName('orders-api'), port: 8303, advertised: '127.0.0.1:8721' },
      ],
      properties: kafkaAuthProperties(A, platformAdminSpiffeId(A)),
    },
    '127.0.0.1',
    { port: 8300, brokerPort: 8094, controllerPort: 8093 },
  );

  it('puts SSL with client certificates on every listener, a workload listener included', () => {
    expect(props['listener.security.protocol.map']).toBe(
      'CLIENT:SSL,BROKER:SSL,CONTROLLER:SSL,CLIENT_ORDERS_API:SSL',
    );
    expect(props['ssl.client.auth']).toBe('required');
    expect(props.listeners).toContain('CLIENT_ORDERS_API://127.0.0.1:8303');
    // Clients of a workload listener are sent back to their own sidecar.
    expect(props['advertised.listeners']).toBe(
      'CLIENT://127.0.0.1:8300,BROKER://127.0.0.1:8094,CLIENT_ORDERS_API://127.0.0.1:8721',
    );
  });

  it('in a pod: client listeners on the pod address, controller and inter-broker on its loopback', () => {
    const inPod = kafkaProperties(
      {
        dir: '/d',
        tls: { keystore: '/k.pem', truststore: '/t.pem' },
        listeners: [
          { name: workloadListenerName('orders-api'), port: 8303, advertised: '127.0.0.1:8721' },
        ],
        clientAddress: '198.18.8.23',
        clientAdvertised: '127.0.0.1:8300',
      },
      '127.0.0.1',
      { port: 8300, brokerPort: 8094, controllerPort: 8093 },
    );
    expect(inPod.listeners).toBe(
      'CLIENT://198.18.8.23:8300,BROKER://127.0.0.1:8094,CONTROLLER://127.0.0.1:8093,CLIENT_ORDERS_API://198.18.8.23:8303',
    );
    // The direct listener's clients come through the host's relay on loopback: that is advertised.
    expect(inPod['advertised.listeners']).toBe(
      'CLIENT://127.0.0.1:8300,BROKER://127.0.0.1:8094,CLIENT_ORDERS_API://127.0.0.1:8721',
    );
    expect(inPod['controller.quorum.voters']).toBe('1@127.0.0.1:8093');
    expect(() =>
      kafkaProperties({ dir: '/d', clientAdvertised: 'nope' }, 'h', {
        port: 1,
        brokerPort: 2,
        controllerPort: 3,
      }),
    ).toThrow('kafka: clientAdvertised must be host:port, got nope');
  });

  it('authorizes with StandardAuthorizer, deny by default, SPIFFE principals and two super users', () => {
    expect(props['authorizer.class.name']).toBe(
      'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    );
    expect(props['allow.everyone.if.no.acl.found']).toBe('false');
    expect(props['principal.builder.class']).toBe('dev.trellis.kafka.SpiffePrincipalBuilder');
    expect(props['super.users']).toBe(
      'User:spiffe://trellis.local/ns/trellis/sa/kafka;User:spiffe://trellis.local/ns/trellis/sa/platform-admin',
    );
  });

  it('rejects a bad listener name, a reused name and a taken port', () => {
    const base = { dir: '/d' };
    const at = { port: 1, brokerPort: 2, controllerPort: 3 };
    const l = (name: string, port: number) => ({ name, port, advertised: '127.0.0.1:9' });
    expect(() => kafkaProperties({ ...base, listeners: [l('client-x', 4)] }, 'h', at)).toThrow(
      /listener name "client-x" must match/,
    );
    expect(() => kafkaProperties({ ...base, listeners: [l('BROKER', 4)] }, 'h', at)).toThrow(
      'kafka: listener name BROKER is used twice',
    );
    expect(() => kafkaProperties({ ...base, listeners: [l('X', 2)] }, 'h', at)).toThrow(
      'kafka: listener X: port 2 is taken',
    );
  });

  it('aligns the compiled ACL principals with what the principal builder yields', () => {
    const acls = compileKafkaAcls(local(A), { principal: (w) => kafkaPrincipal(A, w) });
    expect(
      acls.map((b) => `${b.principal} ${b.operation} ${b.resourceType}:${b.resourceName}`),
    ).toEqual([
      'User:spiffe://trellis.local/ns/trellis/sa/ledger READ GROUP:ledger',
      'User:spiffe://trellis.local/ns/trellis/sa/ledger READ TOPIC:orders.v1',
      'User:spiffe://trellis.local/ns/trellis/sa/orders-api WRITE TOPIC:orders.v1',
    ]);
  });
});

describe('Kafka ACL and topic diffs', () => {
  const acl = (principal: string, op: KafkaAclBinding['operation']): KafkaAclBinding => ({
    resourceType: 'TOPIC',
    resourceName: 'orders.v1',
    patternType: 'LITERAL',
    principal,
    host: '*',
    operation: op,
    permissionType: 'ALLOW',
  });

  it('compares ACL sets, not lists', () => {
    const a = [acl('User:a', 'READ'), acl('User:b', 'WRITE')];
    expect(aclsKey(a)).toBe(aclsKey([...a].reverse().concat(a[0] as KafkaAclBinding)));
    expect(aclsKey(a)).not.toBe(aclsKey([acl('User:a', 'READ')]));
    expect(normalizeAcls([...a, ...a])).toHaveLength(2);
  });

  it('plans only the bindings that changed', () => {
    const olds = [acl('User:a', 'READ'), acl('User:b', 'WRITE')];
    const news = [acl('User:a', 'READ'), acl('User:c', 'WRITE')];
    expect(planAcls(olds, news)).toEqual({
      remove: [acl('User:b', 'WRITE')],
      add: [acl('User:c', 'WRITE')],
    });
    expect(planAcls(news, news)).toEqual({ remove: [], add: [] });
  });

  it('turns a binding into the Admin API enums', () => {
    expect(
      toAclEntry({ ...acl('User:a', 'WRITE'), resourceType: 'GROUP', patternType: 'PREFIXED' }),
    ).toEqual({
      resourceType: 3,
      resourceName: 'orders.v1',
      resourcePatternType: 4,
      principal: 'User:a',
      host: '*',
      operation: 4,
      permissionType: 3,
    });
  });

  it('compares topic lists by content', () => {
    const t = [
      { name: 'b', partitions: 1 },
      { name: 'a', partitions: 1 },
    ];
    expect(topicsKey(t)).toBe(topicsKey([...t].reverse()));
    expect(topicsKey(t)).not.toBe(
      topicsKey([
        { name: 'a', partitions: 3 },
        { name: 'b', partitions: 1 },
      ]),
    );
  });
});

describe('Cassandra settings and grants', () => {
  it('writes commitlog_sync explicitly, with Cassandra 5.0 key names', () => {
    expect(commitlogConfig({ mode: 'batch' })).toEqual({ commitlog_sync: 'batch' });
    expect(commitlogConfig({ mode: 'group', windowMs: 5 })).toEqual({
      commitlog_sync: 'group',
      commitlog_sync_group_window: '5ms',
    });
    expect(commitlogConfig({ mode: 'periodic', periodMs: 10_000 })).toEqual({
      commitlog_sync: 'periodic',
      commitlog_sync_period: '10000ms',
    });
    expect(() => commitlogConfig({ mode: 'group', windowMs: 0 })).toThrow(
      'cassandra: commitlog windowMs must be an integer in [1, 60000] ms, got 0',
    );
    const yaml = cassandraConfig({ dir: '/d', commitlog: { mode: 'batch' } }, '127.0.0.1', {
      nativePort: 1,
      storagePort: 2,
    });
    expect(yaml.commitlog_sync).toBe('batch');
    expect(yaml).not.toHaveProperty('commitlog_sync_period');
  });

  it('refuses a model that grants a system keyspace', () => {
    const bad = {
      ...A,
      cassandra: {
        ...A.cassandra,
        grants: [
          ...A.cassandra.grants,
          { identity: 'ledger', keyspace: 'system_auth', permissions: ['SELECT' as const] },
        ],
      },
    } as ValidModel;
    expect(systemKeyspaceGrants(A)).toEqual([]);
    expect(systemKeyspaceGrants(bad)).toEqual([
      "cassandra.grants[2].keyspace: 'system_auth' is a system keyspace",
    ]);
  });

  it('undoes what left the model (grants, then identities, then roles), keeps keyspaces, re-applies the rest', () => {
    const replication = { class: 'SimpleStrategy', replication_factor: 1 };
    const a = compileCassandra(local(A), { replication }).statements;
    const b = compileCassandra(local(B), { replication }).statements;
    expect(planUpdate(a, b)).toEqual([
      'REVOKE SELECT ON KEYSPACE "ledger" FROM \'ledger\';',
      'REVOKE CREATE ON KEYSPACE "ledger" FROM \'ledger\';',
      ...b.map((s) => s.cql),
    ]);
    // A workload dropped from the model loses its grants, its identity and its role, in that order.
    const gone = a.filter((s) => !('role' in s) || s.role === 'ledger');
    const undo = planUpdate(gone, []);
    expect(undo.slice(-2)).toEqual([
      "DROP IDENTITY IF EXISTS 'spiffe://trellis.local/ns/trellis/sa/ledger';",
      "DROP ROLE IF EXISTS 'ledger';",
    ]);
    expect(undo.every((q) => !q.includes('KEYSPACE IF'))).toBe(true);
    expect(planUpdate(a, a)).toEqual(a.map((s) => s.cql));
  });

  it('has an inverse for every statement kind but keyspaces', () => {
    const s = compileCassandra(local(A), {
      replication: { class: 'SimpleStrategy', replication_factor: 1 },
    }).statements;
    const kinds = new Map(s.map((x) => [x.kind, undoStatement(x)]));
    expect(kinds.get('create-keyspace')).toBeNull();
    expect(kinds.get('grant')).toMatch(
      /^REVOKE (SELECT|MODIFY|CREATE) ON KEYSPACE "\w+" FROM '[\w-]+';$/,
    );
    expect(cqlOf(s)).toBe(s.map((x) => x.cql).join('\n'));
  });
});
