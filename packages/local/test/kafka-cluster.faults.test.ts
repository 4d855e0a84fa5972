import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  Kafka,
  ResourcePatternTypes,
} from 'kafkajs';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countKeys, lostAndDuplicated } from '../src/harness/kafka-read.ts';
import { kafkaClientConfig, type KafkaClientCredentials } from '../src/harness/kafka-client.ts';
import {
  describeKafkaQuorum,
  startKafkaCluster,
  type KafkaCluster,
  type QuorumQuestion,
} from '../src/harness/kafka-cluster.ts';
import { KAFKA_AUTHORIZER_LOG } from '../src/harness/kafka-config.ts';
import { CertificateAuthority, writePemFiles, type PemFiles } from '../src/harness/tls.ts';
import { waitUntil } from '../src/harness/wait.ts';

// Three real Kafka 4 KRaft nodes (each broker + controller voter) on 127.0.0.1-3, SSL with client
// certificates on every listener, SPIFFE principals, the nodes alone as super users
// (docs/adr/0027-kafka-kraft-cluster.md).
const TD = 'spiffe://trellis.test';
const nodeId = (i: number): string => `${TD}/ns/data/sa/kafka-${i}`;
const ORDERS_API = `${TD}/ns/orders/sa/orders-api`;
const LEDGER = `${TD}/ns/orders/sa/ledger`;
const TOPIC = 'orders.v1';

let dir = '';
let cluster: KafkaCluster | undefined;
const nodeFiles: PemFiles[] = [];
let ordersApi: PemFiles;
let ledger: PemFiles;
let foreign: PemFiles;
/** The active controller when the quorum was first described. */
let activeController = -1;
const fileStart = Date.now();

const creds = (f: PemFiles): KafkaClientCredentials => ({
  cert: f.cert,
  key: f.key,
  ca: f.truststore,
});
const tlsOf = (f: PemFiles) => ({ keystore: f.keystore, truststore: f.truststore });
function live(): KafkaCluster {
  if (!cluster) throw new Error('the Kafka cluster did not start');
  return cluster;
}
function nodeCert(i: number): PemFiles {
  const f = nodeFiles[i - 1];
  if (!f) throw new Error(`no certificate for node ${i}`);
  return f;
}
/** A kafkajs client of the cluster (or of `bootstrap`) as `who`. */
function client(who: PemFiles, clientId: string, bootstrap = live().bootstrap): Kafka {
  const cfg = kafkaClientConfig({ bootstrap, tls: true, host: '127.0.0.1' }, creds(who), clientId);
  return new Kafka({ ...cfg, retry: { retries: 5, initialRetryTime: 300 } });
}
/** Resident memory of each node's JVM, in MiB. */
function rssMiB(c: KafkaCluster): string {
  return c.nodes
    .map((s) => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.process.pid}/status`, 'utf8'));
      return Math.round(Number(m?.[1] ?? 0) / 1024);
    })
    .join(' / ');
}
const loadavg = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-kafka-cluster-'));
  const tlsDir = join(dir, 'tls');
  const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
  for (const i of [1, 2, 3])
    nodeFiles.push(
      writePemFiles(
        tlsDir,
        `kafka-${i}`,
        // An SVID (URI SAN only, empty subject) plus the node's address, which its peers verify.
        await ca.issue({ uris: [nodeId(i)], ips: [`127.0.0.${i}`] }),
        ca.rootPem,
      ),
    );
  ordersApi = writePemFiles(
    tlsDir,
    'orders-api',
    await ca.issue({ uris: [ORDERS_API], usages: ['client'] }),
    ca.rootPem,
  );
  ledger = writePemFiles(
    tlsDir,
    'ledger',
    await ca.issue({ uris: [LEDGER], usages: ['client'] }),
    ca.rootPem,
  );
  // Node 2's very identity and address, from a CA the cluster does not trust.
  const otherCa = await CertificateAuthority.create({ commonName: 'Someone else' });
  foreign = writePemFiles(
    tlsDir,
    'foreign',
    await otherCa.issue({ uris: [nodeId(2)], ips: ['127.0.0.2'] }),
    ca.rootPem,
  );

  cluster = await startKafkaCluster({
    dir: join(dir, 'cluster'),
    nodes: [1, 2, 3].map((i) => ({ spiffeId: nodeId(i), tls: tlsOf(nodeCert(i)) })),
    heapMb: 384,
    // 50 partitions x 3 replicas of __consumer_offsets would cost seconds here for nothing.
    properties: { 'offsets.topic.num.partitions': '3' },
  });
  console.info(
    `kafka cluster ${cluster.clusterId}: 3 nodes, storage formats ${cluster.formatMs} ms (sum), ` +
      `ready in ${cluster.startupMs} ms (first spawn to 3 brokers registered), ` +
      `RSS ${rssMiB(cluster)} MiB; ${loadavg()}`,
  );

  // The topic (replication factor left to the cluster's default) and the workloads' ACLs, as node 1.
  const admin = client(nodeCert(1), 'trellis-test-admin').admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1 }],
      waitForLeaders: true,
    });
    const acl = (principal: string, resourceType: number, name: string, operation: number) => ({
      resourceType,
      resourceName: name,
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: `User:${principal}`,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    });
    await admin.createAcls({
      acl: [
        acl(ORDERS_API, AclResourceTypes.TOPIC, TOPIC, AclOperationTypes.WRITE),
        acl(ORDERS_API, AclResourceTypes.TOPIC, TOPIC, AclOperationTypes.DESCRIBE),
        acl(LEDGER, AclResourceTypes.TOPIC, TOPIC, AclOperationTypes.READ),
        acl(LEDGER, AclResourceTypes.TOPIC, TOPIC, AclOperationTypes.DESCRIBE),
        acl(LEDGER, AclResourceTypes.GROUP, 'ledger', AclOperationTypes.READ),
      ],
    });
    // __consumer_offsets (RF 3) is created on the first coordinator lookup, which needs 3 live
    // brokers: create it now, before any node is killed.
    // The group coordinator answers once that topic's partitions have leaders.
    await waitUntil(() => admin.fetchOffsets({ groupId: 'ledger', topics: [TOPIC] }), {
      what: 'the group coordinator of ledger',
      timeoutMs: 60_000,
    });
  } finally {
    await admin.disconnect();
  }
});

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.info(`kafka-cluster.faults.test.ts: ${Date.now() - fileStart} ms wall; ${loadavg()}`);
});

/** What a raw Kafka ApiVersions (v0) request on `port` gets: an answer, a TLS error, or a hang-up. */
async function apiVersions(
  host: string,
  port: number,
  who?: PemFiles,
): Promise<{ answered: boolean; tlsError: string | null; firstByte: number | null }> {
  const clientId = Buffer.from('trellis-test');
  const body = Buffer.alloc(10 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2);
  body.writeInt32BE(4242, 4); // correlation id
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let sock: Socket;
    const finish = (tlsError: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      // A response: size, correlation id 4242, error code 0.
      const answered = got.length >= 10 && got.readInt32BE(4) === 4242 && got.readInt16BE(8) === 0;
      resolve({ answered, tlsError, firstByte: got.length > 0 ? (got[0] ?? null) : null });
    };
    const timer = setTimeout(() => finish('timeout'), 10_000);
    const send = (): void => {
      sock.write(Buffer.concat([size, body]));
    };
    if (who) {
      sock = tlsConnect({
        host,
        port,
        cert: readFileSync(who.cert),
        key: readFileSync(who.key),
        ca: readFileSync(nodeCert(1).truststore),
      });
      sock.once('secureConnect', send);
    } else {
      sock = netConnect({ host, port });
      sock.once('connect', send);
    }
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) finish(null);
    });
    sock.on('error', (err) => finish(err.message));
    sock.on('close', () => finish(null));
  });
}

/** The error kafkajs gets for DescribeAcls (DESCRIBE on the cluster) on `bootstrap` as `who`. */
async function describeAclsAs(who: PemFiles, bootstrap: string): Promise<string> {
  const admin = client(who, 'trellis-test-acl', bootstrap).admin();
  try {
    await admin.connect();
    const r = await admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    return `ok: ${r.resources.length} resources`;
  } catch (err) {
    return `${(err as { type?: string }).type ?? (err as Error).name}: ${(err as Error).message}`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

describe('a 3-node KRaft cluster (combined broker + controller)', () => {
  it('has 3 voters in the quorum, the nodes alone as super users, and an RF 3 topic with 3 in sync', async () => {
    const c = live();
    const props = readFileSync(join(c.node(1).dir, 'conf', 'server.properties'), 'utf8');
    expect(props).toContain(
      `controller.quorum.voters=${c.nodes.map((s) => `${s.nodeId}@${s.host}:${s.controllerPort}`).join(',')}`,
    );
    expect(props).toContain('listener.security.protocol.map=CLIENT:SSL,BROKER:SSL,CONTROLLER:SSL');
    expect(props).toContain('ssl.client.auth=required');
    expect(props).toContain('allow.everyone.if.no.acl.found=false');
    expect(props).toContain(`super.users=${[1, 2, 3].map((i) => `User:${nodeId(i)}`).join(';')}`);
    // The values Kafka itself parsed (its KafkaConfig dump at start), not just what we wrote.
    const log = readFileSync(c.node(1).logFile, 'utf8');
    for (const kv of [
      'default.replication.factor = 3',
      'min.insync.replicas = 2',
      'offsets.topic.replication.factor = 3',
      'transaction.state.log.replication.factor = 3',
      'transaction.state.log.min.isr = 2',
    ])
      expect(log).toContain(kv);

    const [quorum] = await describeKafkaQuorum(join(dir, 'probe-quorum'), [
      {
        bootstrap: c.nodes.map((s) => `${s.host}:${s.controllerPort}`).join(','),
        controllers: true,
        tls: tlsOf(nodeCert(1)),
      },
    ]);
    if (!quorum?.ok) throw new Error(`describeMetadataQuorum failed: ${JSON.stringify(quorum)}`);
    expect(quorum.voters.map((v) => v.id).sort()).toEqual([1, 2, 3]);
    expect([1, 2, 3]).toContain(quorum.leaderId);
    activeController = quorum.leaderId;
    // Every voter has fetched the metadata log and caught up with the leader.
    for (const v of quorum.voters) expect(v.lastCaughtUpTimestamp).not.toBeNull();
    expect(quorum.observers).toEqual([]);

    const admin = client(nodeCert(1), 'trellis-test-admin').admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      const p = md.topics[0]?.partitions[0];
      expect(p?.replicas.slice().sort()).toEqual([1, 2, 3]);
      expect(p?.isr.slice().sort()).toEqual([1, 2, 3]);
    } finally {
      await admin.disconnect();
    }
  });

  it('accepts a node certificate on node 2 controller and inter-broker ports, and refuses plaintext, a foreign CA and a workload SVID', async () => {
    const n2 = live().node(2);
    const ctrl = `${n2.host}:${n2.controllerPort}`;
    const broker = `${n2.host}:${n2.brokerPort}`;
    for (const port of [n2.controllerPort, n2.brokerPort]) {
      // TLS layer. The right certificate (node 1, a peer): handshake done, a Kafka answer.
      expect(await apiVersions(n2.host, port, nodeCert(1))).toMatchObject({
        answered: true,
        tlsError: null,
      });
      // Plaintext: read as a bad TLS record; no Kafka answer, at most a TLS alert record (type 21).
      const plain = await apiVersions(n2.host, port);
      expect(plain.answered).toBe(false);
      expect([null, 21]).toContain(plain.firstByte);
      // A foreign CA (node 2's own SPIFFE ID and address): refused in the TLS handshake.
      const alien = await apiVersions(n2.host, port, foreign);
      expect(alien.answered).toBe(false);
      expect(alien.tlsError).toMatch(/alert (certificate unknown|unknown ca|bad certificate)/);
      // A workload SVID from the right CA: the handshake completes (not refused by TLS) ...
      expect(await apiVersions(n2.host, port, ordersApi)).toMatchObject({ answered: true });
    }

    // Authorization layer. Controller port, with Kafka's Admin client (bootstrap.controllers):
    const q = (who: PemFiles, bootstrap: string, controllers: boolean): QuorumQuestion => ({
      bootstrap,
      controllers,
      tls: tlsOf(who),
    });
    const [nodeAsk, workloadAsk, foreignAsk, workloadOnBroker] = await describeKafkaQuorum(
      join(dir, 'probe-refusals'),
      [
        q(nodeCert(1), ctrl, true),
        q(ordersApi, ctrl, true),
        q(foreign, ctrl, true),
        q(ordersApi, broker, false),
      ],
    );
    // ... the node is allowed to describe the quorum (DESCRIBE on the cluster),
    expect(nodeAsk).toMatchObject({ ok: true });
    // ... the workload is authenticated as itself and denied by the authorizer,
    expect(workloadAsk).toMatchObject({
      ok: false,
      error: 'org.apache.kafka.common.errors.ClusterAuthorizationException',
    });
    expect(workloadOnBroker).toMatchObject({
      ok: false,
      error: 'org.apache.kafka.common.errors.ClusterAuthorizationException',
    });
    // ... and the foreign CA never got past the handshake.
    expect(foreignAsk).toMatchObject({
      ok: false,
      error: 'org.apache.kafka.common.errors.SslAuthenticationException',
    });
    // The denial is logged by the node that answered, which for the controller-bootstrapped Admin need
    // not be node 2 (it may send DescribeQuorum to another controller it learnt of); a CI run on
    // 2026-12-07 read node 2's log alone and missed it. Every node's log, for up to 10 s:
    const deniedLine = new RegExp(
      `Principal = User:${ORDERS_API} is Denied operation = DESCRIBE .* on resource = Cluster:LITERAL:kafka-cluster`,
    );
    const authorizerLogs = (): string =>
      live()
        .nodes.map((s) => join(s.dir, 'logs', KAFKA_AUTHORIZER_LOG))
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
    const until = Date.now() + 10_000;
    while (!deniedLine.test(authorizerLogs()) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 250));
    expect(authorizerLogs()).toMatch(deniedLine);

    // Inter-broker port, with kafkajs: DescribeAcls needs DESCRIBE on the cluster.
    expect(await describeAclsAs(nodeCert(3), broker)).toMatch(/^ok: \d+ resources$/);
    expect(await describeAclsAs(ordersApi, broker)).toMatch(/^CLUSTER_AUTHORIZATION_FAILED/);
  });

  it('loses and duplicates no acknowledged record when the leader node is killed -9, and the node rejoins', async () => {
    const c = live();
    const admin = client(nodeCert(1), 'trellis-test-admin').admin();
    await admin.connect();
    const leaderOf = async (): Promise<number> => {
      const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      return md.topics[0]?.partitions[0]?.leader ?? -1;
    };
    const victim = await leaderOf();
    expect([1, 2, 3]).toContain(victim);

    // A steady idempotent acks=all producer, one record at a time: at most 400 records or 90 s.
    const producer = client(ordersApi, 'orders-api').producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Retry often (every <= 1 s, ~30 s in all) so the pause measured is the cluster's, not backoff.
      retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 1_000 },
    });
    await producer.connect();
    const acked: string[] = [];
    let failed = 0;
    let killedAt = 0;
    let firstAckAfterKill = 0;
    const deadline = Date.now() + 90_000;
    try {
      for (let i = 0; i < 400 && Date.now() < deadline; i++) {
        if (i === 100) {
          await c.kill(victim);
          killedAt = Date.now();
        }
        const key = `o-${i}`;
        try {
          await producer.send({
            topic: TOPIC,
            acks: -1,
            timeout: 10_000,
            messages: [{ key, value: key }],
          });
          acked.push(key);
          if (killedAt && !firstAckAfterKill) firstAckAfterKill = Date.now();
        } catch {
          failed++;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
    expect(killedAt).toBeGreaterThan(0);
    const newLeader = await leaderOf();
    expect(newLeader).not.toBe(victim);
    console.info(
      `kill -9 of node ${victim} (partition leader; active controller was node ${activeController}): ${acked.length} acknowledged, ${failed} failed sends, ` +
        `first ack ${firstAckAfterKill - killedAt} ms after the kill; new leader node ${newLeader}`,
    );
    // Writes went on with 2 of 3 in sync (min.insync.replicas=2).
    expect(acked.filter((k) => Number(k.slice(2)) > 100).length).toBeGreaterThan(0);

    // Every acknowledged record, exactly once, read through the surviving nodes alone.
    const survivors = c.nodes
      .filter((s) => s.nodeId !== victim)
      .map((s) => s.bootstrap)
      .join(',');
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    const end = Number(offsets[0]?.high ?? 0);
    const consumer = client(ledger, 'ledger', survivors).consumer({
      groupId: 'ledger',
      sessionTimeout: 10_000,
    });
    const seen = await countKeys(consumer, TOPIC, end);
    const { lost, duplicated } = lostAndDuplicated(acked, seen);
    console.info(
      `consumed ${[...seen.values()].reduce((a, b) => a + b, 0)} records (${seen.size} keys, ` +
        `${seen.size - acked.filter((k) => seen.has(k)).length} written but not acknowledged); ` +
        `lost ${lost.length}, duplicated ${duplicated.length}`,
    );
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);

    // The killed node comes back on its own storage and rejoins: 3 in sync, 3 voters caught up.
    const restartAt = Date.now();
    const back = await c.restart(victim);
    let isr: number[] = [];
    for (
      let t = Date.now();
      Date.now() - t < 120_000;
      await new Promise((r) => setTimeout(r, 500))
    ) {
      const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      isr = md.topics[0]?.partitions[0]?.isr ?? [];
      if (isr.length === 3) break;
    }
    const isrMs = Date.now() - restartAt;
    await admin.disconnect();
    expect(isr.slice().sort()).toEqual([1, 2, 3]);
    const [quorum] = await describeKafkaQuorum(join(dir, 'probe-rejoin'), [
      {
        bootstrap: `${back.host}:${back.controllerPort}`,
        controllers: true,
        tls: tlsOf(nodeCert(1)),
      },
    ]);
    if (!quorum?.ok) throw new Error(`describeMetadataQuorum failed: ${JSON.stringify(quorum)}`);
    expect(quorum.voters.map((v) => v.id).sort()).toEqual([1, 2, 3]);
    const rejoined = quorum.voters.find((v) => v.id === victim);
    expect(rejoined?.lastCaughtUpTimestamp ?? 0).toBeGreaterThanOrEqual(restartAt);
    console.info(
      `node ${victim} restarted: answering in ${back.startupMs} ms, ISR back to 3 ${isrMs} ms after ` +
        `the restart; RSS ${rssMiB(c)} MiB`,
    );
  });
});
