// Cassandra and Kafka as server pods, for real: `pulumi up` of the data fixture (the Mesh CA and
// infra/local's data module) with `pods` on puts each server in a network namespace of its own, as
// its own user. Only their mTLS client listeners are on the pod addresses; JMX, the storage port,
// the controller and the inter-broker listener are on each pod's own loopback. Every refusal
// below first shows the same path working from the right place. Needs root (namespaces, users).
import { Client } from 'cassandra-driver';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cassandraClientOptions,
  kafkaClientConfig,
  nodetool,
  servedCertificate,
} from '@trellis/local/harness';
import { podCommand, podLeftovers, readableBy, type PodLaunch } from '@trellis/local/pods';
import { readState } from '@trellis/local/supervisor';
import { localPortsAt, type LocalPortName } from '@trellis/policy';
import { pickBase, TestStack } from './support/test-stack.ts';
import { connectFromHost, CONNECT_SCRIPT } from './support/net.ts';

const { Kafka, logLevel } = kafkajs;

const FIXTURE = fileURLToPath(new URL('./fixtures/data/', import.meta.url));
const STACK = 'data-pods';

interface PodOut {
  address: string;
  user: string;
  launch: PodLaunch;
}

interface Outputs {
  caFile: string;
  cassandra: { host: string; port: number; localDataCenter: string };
  kafka: {
    bootstrap: string;
    workloadListeners: { workload: string; port: number; advertised: string }[];
  };
  pods: Record<'cassandra' | 'kafka', PodOut>;
  ports: Record<LocalPortName, number>;
}

let out: Outputs;
let stackDir = '';
let destroyed = false;

const ts = new TestStack({
  fixture: FIXTURE,
  stack: STACK,
  tmpPrefix: 'trellis-data-pods-',
  timeoutMs: 480_000,
});

const pod = (name: 'cassandra' | 'kafka'): PodOut => out.pods[name];

/** An identity's SVID files: the fixture's test SVIDs, or the data module's platform-admin. */
function svid(w: string): { cert: string; key: string; ca: string } {
  const d = w === 'platform-admin' ? join(stackDir, 'pki', w) : join(stackDir, 'svid', w);
  return { cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), ca: join(d, 'bundle.pem') };
}

/** The same TCP connect, from inside `name`'s pod as its user. */
function connectInPod(name: 'cassandra' | 'kafka', host: string, port: number): Promise<string> {
  const argv = podCommand(pod(name).launch, process.execPath, [
    '-e',
    CONNECT_SCRIPT,
    host,
    String(port),
  ]);
  return new Promise((resolve, reject) =>
    execFile(argv.command, argv.args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

/**
 * A Kafka ApiVersions request (v0) in plaintext; what comes back before the broker closes: a
 * Kafka answer starts with its 4-byte length, a TLS listener answers with an alert (0x15) or not at all.
 */
function plaintextApiVersions(
  host: string,
  port: number,
): Promise<{ closed: boolean; first: number | null }> {
  const clientId = Buffer.from('plaintext');
  const body = Buffer.alloc(10 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2);
  body.writeInt32BE(1, 4); // correlation id
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const frame = Buffer.concat([Buffer.alloc(4), body]);
  frame.writeInt32BE(body.length, 0);
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = Buffer.alloc(0);
    s.setTimeout(10_000);
    s.on('connect', () => s.write(frame));
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    const done = (closed: boolean) =>
      resolve({ closed, first: got.length > 0 ? (got[0] ?? null) : null });
    s.on('close', () => done(true));
    s.on('timeout', () => {
      s.destroy();
      done(false);
    });
    s.on('error', () => undefined);
  });
}

/** Produce one record; 'ok' or the error. */
async function produce(cfg: kafkajs.KafkaConfig, topic: string): Promise<string> {
  const producer = new Kafka({ ...cfg, retry: { retries: 2 } }).producer({
    allowAutoTopicCreation: false,
  });
  try {
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'from the host' }] });
    return 'ok';
  } catch (err) {
    return String(err);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/** The uid a running process of `component` has (the supervised child). */
function uidOf(component: string): number {
  const pid = readState(join(stackDir, 'run', component, 'supervisor.json'))?.childPid;
  if (!pid) throw new Error(`${component} has no running child`);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

/** The effective and bounding capability sets of `component`'s process (hex, /proc/<pid>/status). */
function capsOf(component: string): { eff: string; bnd: string } {
  const pid = readState(join(stackDir, 'run', component, 'supervisor.json'))?.childPid;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const cap = (k: string) => new RegExp(`^Cap${k}:\\s+([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '?';
  return { eff: cap('Eff'), bnd: cap('Bnd') };
}

/** `Max <what>` soft limit of `component`'s process (from /proc/<pid>/limits). */
function limitOf(component: string, what: string): string {
  const pid = readState(join(stackDir, 'run', component, 'supervisor.json'))?.childPid;
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  return new RegExp(`^Max ${what}\\s+(\\S+)`, 'm').exec(limits)?.[1] ?? '?';
}

beforeAll(async () => {
  await ts.init();
  stackDir = ts.stackDir;
  const base = await pickBase((b) => {
    const p = localPortsAt(b);
    return [
      p.cassandraNative,
      p.cassandraStorage,
      p.cassandraJmx,
      p.kafkaController,
      p.kafkaInterBroker,
      ...Array.from({ length: 5 }, (_, i) => p.kafkaClientsFrom + i),
    ];
  }, 'data pods test stack');
  await ts.ok(['config', 'set', 'trellis-data-test:stackDir', stackDir]);
  await ts.ok(['config', 'set', 'trellis-data-test:basePort', String(base)]);
  await ts.ok(['config', 'set', 'trellis-data-test:model', join(FIXTURE, 'model-a.yaml')]);
  await ts.ok(['config', 'set', 'trellis-data-test:pods', 'true']);
  await ts.ok(['up', '--yes', '--skip-preview']);
  out = JSON.parse(await ts.ok(['stack', 'output', '--json'], 60_000, false)) as Outputs;
}, 600_000);

afterAll(async () => {
  await ts.cleanup(!destroyed);
}, 300_000);

describe('Cassandra in its pod', () => {
  it('serves a client with the right certificate from the host, on 127.0.0.1 and the pod address', async () => {
    expect(pod('cassandra').address).toMatch(/^198\.18\.\d+\.22$/);
    for (const host of ['127.0.0.1', pod('cassandra').address]) {
      const c = new Client(
        cassandraClientOptions(
          {
            host,
            contactPoint: `${host}:${out.cassandra.port}`,
            localDataCenter: 'datacenter1',
            tls: true,
          },
          svid('orders-api'),
        ),
      );
      try {
        await c.connect();
        await c.execute(
          'CREATE TABLE IF NOT EXISTS orders.orders (id text PRIMARY KEY, total int)',
        );
        await c.execute('INSERT INTO orders.orders (id, total) VALUES (?, ?)', [host, 7], {
          prepare: true,
        });
        const rs = await c.execute('SELECT total FROM orders.orders WHERE id = ?', [host], {
          prepare: true,
        });
        expect(rs.first().get('total')).toBe(7);
      } finally {
        await c.shutdown();
      }
    }
  });

  it('answers nodetool inside its pod only: JMX from the host is refused', async () => {
    const server = {
      host: '127.0.0.1',
      jmxPort: out.ports.cassandraJmx,
      dir: join(stackDir, 'run/cassandra/pod'),
    };
    expect(await nodetool(server, ['status'], { pod: pod('cassandra').launch })).toMatch(
      /^UN\s+127\.0\.0\.1/m,
    );
    await expect(nodetool(server, ['status'])).rejects.toThrow(/Connection refused/);
    expect(await connectFromHost('127.0.0.1', out.ports.cassandraJmx)).toBe('ECONNREFUSED');
    expect(await connectFromHost(pod('cassandra').address, out.ports.cassandraJmx)).toBe(
      'ECONNREFUSED',
    );
  });

  it('keeps the storage port on the pod’s loopback', async () => {
    expect(await connectInPod('cassandra', '127.0.0.1', out.ports.cassandraStorage)).toBe(
      'connected',
    );
    expect(await connectFromHost(pod('cassandra').address, out.ports.cassandraStorage)).toBe(
      'ECONNREFUSED',
    );
  });
});

describe('Kafka in its pod', () => {
  const direct = (w: string, bootstrap = out.kafka.bootstrap): kafkajs.KafkaConfig => ({
    ...kafkaClientConfig(
      { bootstrap, tls: true, host: bootstrap.split(':')[0] ?? '' },
      svid(w),
      `pods-${w}`,
    ),
    logLevel: logLevel.NOTHING,
  });

  it('serves orders-api’s certificate from the host on the direct listener (advertised as the relay)', async () => {
    expect(pod('kafka').address).toMatch(/^198\.18\.\d+\.23$/);
    expect(out.kafka.bootstrap).toBe(`127.0.0.1:${out.ports.kafkaClientsFrom}`);
    expect(await produce(direct('orders-api'), 'orders.v1')).toBe('ok');
    // Dialled at the pod address, the broker sends the client to what it advertises: the relay.
    const admin = new Kafka(
      direct('orders-api', `${pod('kafka').address}:${out.ports.kafkaClientsFrom}`),
    ).admin();
    try {
      await admin.connect();
      const d = await admin.describeCluster();
      expect(d.brokers.map((b) => `${b.host}:${b.port}`)).toEqual([out.kafka.bootstrap]);
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps the controller and inter-broker listeners on the pod’s loopback', async () => {
    for (const port of [out.ports.kafkaController, out.ports.kafkaInterBroker]) {
      expect(await connectInPod('kafka', '127.0.0.1', port)).toBe('connected');
      expect(await connectFromHost(pod('kafka').address, port)).toBe('ECONNREFUSED');
      expect(await connectFromHost('127.0.0.1', port)).toBe('ECONNREFUSED');
    }
  });

  it('refuses plaintext on every client listener', async () => {
    const ports = [out.ports.kafkaClientsFrom, ...out.kafka.workloadListeners.map((l) => l.port)];
    expect(ports.length).toBeGreaterThan(1);
    for (const port of ports) {
      const r = await plaintextApiVersions(pod('kafka').address, port);
      // Closed with no Kafka answer: nothing, or a TLS alert record.
      expect(r.closed).toBe(true);
      expect(r.first === null || r.first === 0x15, `port ${port} answered ${r.first}`).toBe(true);
    }
  });
});

describe('the servers’ users and files', () => {
  it('runs each server as its pod user, owning its files, its key 0400/0600 and its alone', async () => {
    const users: Record<string, { uid: number; gid: number; name: string }> = {};
    for (const name of ['cassandra', 'kafka'] as const) {
      const l = pod(name).launch;
      users[name] = { uid: l.uid, gid: l.gid, name: pod(name).user };
      expect(uidOf(name)).toBe(l.uid);
      const home = join(stackDir, 'run', name, 'pod');
      expect(statSync(home).uid).toBe(l.uid);
      expect(statSync(home).mode & 0o777).toBe(0o700);
      expect(statSync(join(home, 'data')).uid).toBe(l.uid);
      // The process directory (supervisor state) stays root's.
      expect(statSync(join(stackDir, 'run', name)).uid).toBe(0);
      for (const f of ['key.pem', 'keystore.pem']) {
        const st = statSync(join(stackDir, 'pki', name, f));
        expect(st.uid, `${name}/${f}`).toBe(l.uid);
        expect(st.mode & 0o077, `${name}/${f} mode`).toBe(0);
      }
    }
    expect(statSync(join(stackDir, 'run/cassandra/pod/data/commitlog')).uid).toBe(
      users.cassandra?.uid,
    );
    const key = (n: string) => join(stackDir, 'pki', n, 'key.pem');
    const c = users.cassandra;
    const k = users.kafka;
    if (!c || !k) throw new Error('no pod users');
    expect(await readableBy(c, [key('cassandra'), key('kafka')])).toEqual([key('cassandra')]);
    expect(await readableBy(k, [key('cassandra'), key('kafka')])).toEqual([key('kafka')]);
  });

  it('lets Cassandra alone lock its memory: CAP_IPC_LOCK and nothing else, no memlock warning', () => {
    // Positive first: the node locked its memory (JNA's own log line) in its pod, as its user.
    const log = readFileSync(join(stackDir, 'run', 'cassandra', 'process.log'), 'utf8');
    expect(log).toContain('JNA mlockall successful');
    expect(log).not.toContain('Unable to lock JVM memory');
    expect(uidOf('cassandra')).toBe(pod('cassandra').launch.uid);
    // CAP_IPC_LOCK is bit 14; every other capability stays dropped, and Kafka keeps none.
    expect(capsOf('cassandra')).toEqual({ eff: '0000000000004000', bnd: '0000000000004000' });
    expect(capsOf('kafka')).toEqual({ eff: '0000000000000000', bnd: '0000000000000000' });
  });

  it('keeps the JVMs out of /tmp, and reports their memlock and nofile limits', () => {
    const uids = new Set([pod('cassandra').launch.uid, pod('kafka').launch.uid]);
    const inTmp = readdirSync('/tmp').filter((e) => uids.has(lstatSync(join('/tmp', e)).uid));
    expect(inTmp).toEqual([]);
    for (const name of ['cassandra', 'kafka']) {
      const nofile = limitOf(name, 'open files');
      console.info(`${name}: nofile ${nofile}, memlock ${limitOf(name, 'locked memory')}`);
      expect(nofile === 'unlimited' || Number(nofile) >= 10_000, `${name} nofile ${nofile}`).toBe(
        true,
      );
    }
    // JNA loaded from the pod's own tmp (Cassandra refuses to start without its native library).
    expect(readdirSync(join(stackDir, 'run/cassandra/pod/tmp')).length).toBeGreaterThan(0);
  });

  it('takes both servers’ re-issued certificates in their pods without a restart (ADR 0029)', async () => {
    const fileSerial = (who: string): string =>
      new X509Certificate(readFileSync(join(stackDir, 'pki', who, 'cert.pem'))).serialNumber
        .toUpperCase()
        .replace(/^0+/, '');
    const childPid = (who: string): number | null | undefined =>
      readState(join(stackDir, 'run', who, 'supervisor.json'))?.childPid;
    // From the host: Kafka's direct listener and CQL, both through the host's relay to the pod.
    const endpoints = {
      kafka: { host: '127.0.0.1', port: Number(out.kafka.bootstrap.split(':')[1]) },
      cassandra: { host: out.cassandra.host, port: out.cassandra.port },
    };
    const who = ['kafka', 'cassandra'] as const;
    const before = who.map((w) => ({ serial: fileSerial(w), pid: childPid(w) }));
    for (const [i, w] of who.entries())
      expect((await servedCertificate(endpoints[w], svid('platform-admin'))).serial, w).toBe(
        before[i]?.serial,
      );
    await ts.ok(['config', 'set', 'trellis-data-test:rotation', '1']);
    await ts.ok(['up', '--yes', '--skip-preview']);
    for (const [i, w] of who.entries()) {
      const serial = fileSerial(w);
      expect(serial, w).not.toBe(before[i]?.serial);
      expect((await servedCertificate(endpoints[w], svid('platform-admin'))).serial, w).toBe(
        serial,
      );
      expect(childPid(w), w).toBe(before[i]?.pid);
    }
  });

  it('reports no changes on a second run, and after a refresh', async () => {
    const preview = await ts.pulumi(['preview', '--expect-no-changes']);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const refresh = await ts.pulumi(['refresh', '--yes', '--skip-preview']);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    const again = await ts.pulumi(['preview', '--expect-no-changes']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('destroy leaves no pod, user, process or file', async () => {
    const r = await ts.pulumi(['destroy', '--yes', '--skip-preview']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    destroyed = true;
    expect(await podLeftovers(STACK)).toEqual({ netns: [], links: [], users: [], pids: [] });
    expect(existsSync(join(stackDir, 'run'))).toBe(false);
  });
});
