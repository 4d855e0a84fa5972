// The data layer for real: `pulumi up` of a test program (the Mesh CA + infra/local's data module, see
// fixtures/data) brings up Cassandra 5 and Kafka 4 as supervised processes, applies the model's grants
// and ACLs, and is then probed with real clients holding SVIDs from the same CA.
import { Client } from 'cassandra-driver';
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cassandraClientOptions,
  cassandraConnectError as connectError,
  kafkaClientConfig,
} from '@trellis/local/harness';
import { readState } from '@trellis/local/supervisor';
import { localPortsAt } from '@trellis/policy';
import { pickBase, TestStack } from './support/test-stack.ts';

const { Kafka, logLevel } = kafkajs;

const FIXTURE = fileURLToPath(new URL('./fixtures/data/', import.meta.url));
const STACK = 'data-test';

interface Outputs {
  caFile: string;
  cassandra: { host: string; port: number; spiffeId: string; localDataCenter: string };
  kafka: {
    bootstrap: string;
    spiffeId: string;
    workloadListeners: { workload: string; port: number; advertised: string }[];
  };
  egress: {
    workload: string;
    service: string;
    listenPort: number;
    upstream: { host: string; port: number };
    serverSpiffeId: string;
  }[];
  identities: Record<string, string>;
}

let stackDir = '';
let out: Outputs;
let upMs = 0;
const proxies: Server[] = [];

const ts = new TestStack({
  fixture: FIXTURE,
  stack: STACK,
  tmpPrefix: 'trellis-data-',
  timeoutMs: 420_000,
});
const pulumi = ts.pulumi.bind(ts);
const ok = ts.ok.bind(ts);

/** A base port whose data-layer ports are all free. */
function pickDataBase(): Promise<number> {
  return pickBase((base) => {
    const p = localPortsAt(base);
    return [
      p.cassandraNative,
      p.cassandraStorage,
      p.cassandraJmx,
      p.kafkaController,
      p.kafkaInterBroker,
      ...Array.from({ length: 5 }, (_, i) => p.kafkaClientsFrom + i),
      ...Array.from({ length: 30 }, (_, i) => p.sidecarOutboundFrom + i),
    ];
  }, 'data-layer test stack');
}

/** An identity's SVID files: the fixture's test SVIDs, or the data module's platform-admin. */
function svid(w: string): { cert: string; key: string; ca: string } {
  const d = w === 'platform-admin' ? join(stackDir, 'pki', w) : join(stackDir, 'svid', w);
  return { cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), ca: join(d, 'bundle.pem') };
}

const cassandraServer = () => ({
  host: out.cassandra.host,
  contactPoint: `${out.cassandra.host}:${out.cassandra.port}`,
  localDataCenter: out.cassandra.localDataCenter,
  tls: true,
});

async function withCql<T>(w: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(cassandraClientOptions(cassandraServer(), svid(w)));
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.shutdown().catch(() => undefined);
  }
}

/** The error of a CQL statement run as `w` (or 'ok'). */
async function cqlError(w: string, cql: string): Promise<string> {
  return withCql(w, (c) =>
    c.execute(cql).then(
      () => 'ok',
      (e: unknown) => String(e),
    ),
  );
}

/** The whole error chain as text (kafkajs wraps causes). */
function chain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; type?: string; cause?: unknown } | undefined; e;) {
    parts.push(`${e.type ?? ''} ${e.message ?? String(e)}`);
    e = e.cause as typeof e;
  }
  return parts.join(' <- ');
}

/** Produce one record; resolves 'ok' or the error chain. */
async function produce(
  cfg: kafkajs.KafkaConfig,
  topic: string,
  idempotent: boolean,
): Promise<string> {
  const producer = new Kafka({ ...cfg, retry: { retries: 2 } }).producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
  });
  try {
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'k', value: `from ${cfg.clientId}` }],
    });
    return 'ok';
  } catch (err) {
    return chain(err);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

function direct(w: string): kafkajs.KafkaConfig {
  const cfg = kafkaClientConfig(
    { bootstrap: out.kafka.bootstrap, tls: true, host: '127.0.0.1' },
    svid(w),
    `test-${w}`,
  );
  return { ...cfg, logLevel: logLevel.NOTHING };
}

/**
 * A stand-in for a workload's sidecar egress: plaintext on its Kafka egress port, TLS with the
 * workload's SVID to its broker listener, checking that the broker presents Kafka's SPIFFE ID.
 */
async function fakeSidecar(w: string): Promise<string> {
  const e = out.egress.find((x) => x.workload === w && x.service === 'kafka');
  if (!e) throw new Error(`no kafka egress for ${w}`);
  const files = svid(w);
  const server = createServer((down) => {
    const up = tlsConnect({
      host: e.upstream.host,
      port: e.upstream.port,
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      ca: readFileSync(files.ca),
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname?.split(', ').includes(`URI:${e.serverSpiffeId}`)
          ? undefined
          : new Error(`broker is not ${e.serverSpiffeId}: ${cert.subjectaltname}`),
    });
    down.pipe(up).pipe(down);
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(e.listenPort, '127.0.0.1', resolve));
  proxies.push(server);
  return `127.0.0.1:${e.listenPort}`;
}

/** The data layer's java processes: those whose command line names this test's stack dir. */
function javaOfThisTest(): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('java') && cmd.includes(stackDir)) pids.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Regular files and symlinks left under `d`. */
function filesUnder(d: string): string[] {
  if (!existsSync(d)) return [];
  const found: string[] = [];
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (lstatSync(p).isDirectory()) found.push(...filesUnder(p));
    else found.push(p);
  }
  return found;
}

/** The permissions `role` holds on `resource` (e.g. `data/ledger`), read as platform-admin. */
async function permissionsOf(role: string, resource: string): Promise<string[]> {
  const c = new Client(cassandraClientOptions(cassandraServer(), svid('platform-admin')));
  try {
    await c.connect();
    const rs = await c.execute(
      'SELECT permissions FROM system_auth.role_permissions WHERE role = ? AND resource = ?',
      [role, resource],
      { prepare: true },
    );
    return [...((rs.first()?.get('permissions') as string[] | undefined) ?? [])].sort();
  } finally {
    await c.shutdown();
  }
}

function childPid(component: string): number | null {
  return readState(join(stackDir, 'run', component, 'supervisor.json'))?.childPid ?? null;
}

beforeAll(async () => {
  await ts.init();
  stackDir = ts.stackDir;
  const base = await pickDataBase();
  await ok(['config', 'set', 'trellis-data-test:stackDir', stackDir]);
  await ok(['config', 'set', 'trellis-data-test:basePort', String(base)]);
  await ok(['config', 'set', 'trellis-data-test:model', join(FIXTURE, 'model-a.yaml')]);
  const t0 = Date.now();
  await ok(['up', '--yes', '--skip-preview']);
  upMs = Date.now() - t0;
  out = JSON.parse(await ok(['stack', 'output', '--json'])) as Outputs;
  console.info(`data layer up in ${(upMs / 1000).toFixed(1)} s on base port ${base}`);
}, 600_000);

afterAll(async () => {
  for (const s of proxies) s.close();
  await ts.cleanup(true);
}, 300_000);

describe('Cassandra from the model', () => {
  it('refuses a TLS client without a certificate, and a plaintext client', async () => {
    const noCert = cassandraClientOptions(cassandraServer(), { ca: out.caFile });
    expect(await connectError(noCert)).toMatch(/alert (certificate required|bad certificate)/);
    const plain = { ...cassandraClientOptions(cassandraServer()), sslOptions: undefined };
    expect(await connectError(plain)).toMatch(/ECONNRESET|socket hang up|closed/i);
  });

  it('refuses a trusted certificate whose identity maps to no role', async () => {
    const opts = cassandraClientOptions(cassandraServer(), svid('stranger'));
    expect(await connectError(opts)).toMatch(/sa\/stranger' not authorized/);
  });

  it('lets orders-api create its table, write and read keyspace orders', async () => {
    await withCql('orders-api', async (c) => {
      await c.execute(
        'CREATE TABLE IF NOT EXISTS orders.orders (id text PRIMARY KEY, subject text, total int)',
      );
      await c.execute(
        'INSERT INTO orders.orders (id, subject, total) VALUES (?, ?, ?)',
        ['o-1', 'alice', 42],
        { prepare: true },
      );
      const rs = await c.execute('SELECT total FROM orders.orders WHERE id = ?', ['o-1'], {
        prepare: true,
      });
      expect(rs.first().get('total')).toBe(42);
    });
  });

  it('refuses ledger on keyspace orders, and every app on the system keyspaces', async () => {
    expect(await cqlError('ledger', "SELECT * FROM orders.orders WHERE id = 'o-1'")).toMatch(
      /ledger has no SELECT permission/,
    );
    expect(
      await cqlError('ledger', "INSERT INTO orders.orders (id, total) VALUES ('o-2', 1)"),
    ).toMatch(/ledger has no MODIFY permission/);
    expect(await cqlError('orders-api', 'SELECT * FROM system_auth.roles')).toMatch(
      /orders-api has no SELECT permission/,
    );
    expect(await permissionsOf('ledger', 'data/ledger')).toEqual(['CREATE', 'MODIFY', 'SELECT']);
    // And ledger's own keyspace works.
    expect(
      await cqlError(
        'ledger',
        'CREATE TABLE IF NOT EXISTS ledger.order_entries (id text PRIMARY KEY)',
      ),
    ).toBe('ok');
  });

  it('leaves platform_admin the only superuser: the default cassandra role is dropped', async () => {
    const c = new Client(cassandraClientOptions(cassandraServer(), svid('platform-admin')));
    try {
      await c.connect();
      const rs = await c.execute('SELECT role, is_superuser, can_login FROM system_auth.roles');
      const roles = rs.rows
        .map((r) => `${r.get('role') as string}:${r.get('is_superuser') ? 'super' : 'app'}`)
        .sort();
      expect(roles).toEqual(['ledger:app', 'orders-api:app', 'platform_admin:super']);
    } finally {
      await c.shutdown();
    }
  });
});

describe('Kafka from the model', () => {
  it('lets orders-api produce to orders.v1 (idempotent, acks=all) on the direct listener', async () => {
    expect(await produce(direct('orders-api'), 'orders.v1', true)).toBe('ok');
  });

  it("refuses ledger's identity producing to orders.v1, and a stranger reading it", async () => {
    expect(await produce(direct('ledger'), 'orders.v1', false)).toMatch(
      /TOPIC_AUTHORIZATION_FAILED/,
    );
    expect(await produce(direct('stranger'), 'orders.v1', false)).toMatch(
      /TOPIC_AUTHORIZATION_FAILED/,
    );
  });

  it('lets ledger consume orders.v1 in group ledger', async () => {
    const consumer = new Kafka(direct('ledger')).consumer({
      groupId: 'ledger',
      sessionTimeout: 10_000,
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: 'orders.v1', fromBeginning: true });
      const got = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no record within 60 s')), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve(message.value?.toString() ?? '');
          },
        });
      });
      expect(got).toBe('from test-orders-api');
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
  });

  it("serves each workload through its sidecar's egress: metadata points back at the sidecar", async () => {
    const viaSidecar = (w: string, bootstrap: string): kafkajs.KafkaConfig => ({
      clientId: `sidecar-${w}`,
      brokers: [bootstrap],
      connectionTimeout: 3_000,
      requestTimeout: 10_000,
      logLevel: logLevel.NOTHING,
    });
    const orders = await fakeSidecar('orders-api');
    const ledger = await fakeSidecar('ledger');
    // Plaintext from the app; the broker sees the workload's SVID (principal = its SPIFFE ID).
    expect(await produce(viaSidecar('orders-api', orders), 'orders.v1', true)).toBe('ok');
    expect(await produce(viaSidecar('ledger', ledger), 'orders.v1', false)).toMatch(
      /TOPIC_AUTHORIZATION_FAILED/,
    );
    const admin = new Kafka(viaSidecar('orders-api', orders)).admin();
    try {
      await admin.connect();
      const d = await admin.describeCluster();
      expect(d.brokers.map((b) => `${b.host}:${b.port}`)).toEqual([orders]);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('the stack as Pulumi resources', () => {
  it('reports no changes on a second run, and after a refresh', async () => {
    const preview = await pulumi(['preview', '--expect-no-changes']);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const refresh = await pulumi(['refresh', '--yes', '--skip-preview']);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    const again = await pulumi(['preview', '--expect-no-changes']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('applies a model change as grants and ACLs only, without restarting a process', async () => {
    const before = { cassandra: childPid('cassandra'), kafka: childPid('kafka') };
    await ok(['config', 'set', 'trellis-data-test:model', join(FIXTURE, 'model-b.yaml')]);
    const preview = JSON.parse(await ok(['preview', '--json'])) as {
      steps: { op: string; urn: string }[];
    };
    const changed = preview.steps
      .filter((s) => s.op !== 'same')
      .map((s) => `${s.op} ${s.urn.split('::').pop() ?? ''}`)
      .sort();
    expect(changed).toEqual([
      'update cassandra-grants',
      'update kafka-acls',
      'update kafka-topics',
    ]);
    await ok(['up', '--yes', '--skip-preview']);
    expect({ cassandra: childPid('cassandra'), kafka: childPid('kafka') }).toEqual(before);
    // Model B revokes ledger's SELECT on keyspace ledger (read back from the auth tables: the table
    // ledger created keeps its creator's permissions, which Cassandra grants on CREATE TABLE).
    expect(await permissionsOf('ledger', 'data/ledger')).toEqual(['MODIFY']);
    expect(await cqlError('ledger', "INSERT INTO ledger.order_entries (id) VALUES ('e-1')")).toBe(
      'ok',
    );
    expect(await produce(direct('ledger'), 'audit.v1', false)).toBe('ok');
    const preview2 = await pulumi(['preview', '--expect-no-changes']);
    expect(preview2.code, preview2.stdout + preview2.stderr).toBe(0);
  });

  it('destroy leaves no java process of this stack and no file', async () => {
    expect(javaOfThisTest().length).toBe(2);
    const r = await pulumi(['destroy', '--yes', '--skip-preview']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(javaOfThisTest()).toEqual([]);
    expect(filesUnder(stackDir)).toEqual([]);
    expect(upMs).toBeGreaterThan(0);
  });
});
