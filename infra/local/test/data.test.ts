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
  compileCassandra,
  compileKafkaAcls,
  parseModel,
  type KafkaAclBinding,
  type ValidModel,
} from '@trellis/policy';
import { callersOfService, planDataPorts, platformAdminSpiffeId } from '../src/data.ts';
import {
  egressSlots,
  kafkaDirectPort,
  kafkaWorkloadListenerPort,
  portOffsets,
  portsAt,
  sidecarEgressBlock,
  sidecarEgressPort,
  workloadIndex,
} from '../src/ports.ts';

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
const ports = portsAt(8000);

describe('port plan', () => {
  it('gives each calling workload a sidecar egress port per data service and Kafka its own listener', () => {
    // Workloads sorted: ingress 0, ledger 1, orders-api 2.
    const plan = planDataPorts(A, ports);
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
    expect(kafkaDirectPort(ports)).toBe(8300);
  });

  it('only plans egress for workloads that call the data service', () => {
    expect(callersOfService(A, 'cassandra')).toEqual(['ledger', 'orders-api']);
    expect(planDataPorts(A, ports).egress.map((e) => e.workload)).not.toContain('ingress');
  });

  it('never hands out a port twice, nor one of another range, for up to 10 workloads', () => {
    const named = new Set(
      Object.entries(portsAt(20_000))
        .filter(([k]) => !k.endsWith('From'))
        .map(([, v]) => v),
    );
    const p = portsAt(20_000);
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      for (let slot = 0; slot < sidecarEgressBlock; slot++) {
        const port = sidecarEgressPort(p, i, slot);
        expect(seen.has(port) || named.has(port)).toBe(false);
        expect(port).toBeLessThan(p.appFrom);
        seen.add(port);
      }
      const k = kafkaWorkloadListenerPort(p, i);
      expect(seen.has(k) || named.has(k) || k === kafkaDirectPort(p)).toBe(false);
      seen.add(k);
    }
  });

  it('refuses a slot or an index that would run into the next range', () => {
    expect(() => sidecarEgressPort(ports, 0, sidecarEgressBlock)).toThrow(
      'ports: egress slot 10 is outside [0, 9]',
    );
    expect(() => sidecarEgressPort(ports, 10, egressSlots.cassandra)).toThrow(
      'ports: sidecarOutboundFrom + 100 runs into the next range (100 ports from sidecarOutboundFrom)',
    );
    const room = portOffsets.ingressHttps - portOffsets.kafkaClientsFrom;
    expect(() => kafkaWorkloadListenerPort(ports, room - 1)).toThrow(/kafkaClientsFrom/);
    expect(() => workloadIndex(['a'], 'b')).toThrow("ports: unknown workload 'b'");
  });

  it('numbers workloads by sorted name, so YAML order does not move ports', () => {
    expect(workloadIndex(['orders-api', 'ingress', 'ledger'], 'orders-api')).toBe(2);
    expect(workloadIndex(['ledger', 'orders-api', 'ingress'], 'orders-api')).toBe(2);
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
    const acls = compileKafkaAcls(A, { principal: (w) => kafkaPrincipal(A, w) });
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
    const a = compileCassandra(A, { replication }).statements;
    const b = compileCassandra(B, { replication }).statements;
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
    const s = compileCassandra(A, {
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
