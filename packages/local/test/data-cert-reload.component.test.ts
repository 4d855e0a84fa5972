import { Client } from 'cassandra-driver';
import { ConfigResourceTypes, ConfigSource, Kafka, type Producer } from 'kafkajs';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cassandraClientOptions,
  probeCassandra,
  type CassandraServer,
} from '../src/harness/cassandra-client.ts';
import { startCassandra } from '../src/harness/cassandra.ts';
import {
  keystoreLeaf,
  reloadCassandraCertificates,
  reloadKafkaCertificates,
  servedCertificate,
  type TlsClientFiles,
  type TlsEndpoint,
} from '../src/harness/cert-reload.ts';
import { kafkaClientConfig, probeKafka, type KafkaServer } from '../src/harness/kafka-client.ts';
import { startKafka } from '../src/harness/kafka.ts';
import {
  CertificateAuthority,
  splitPem,
  writePemFiles,
  type IssueOptions,
  type PemFiles,
} from '../src/harness/tls.ts';

// One real Kafka 4 node and one real Cassandra 5.0 node, both TLS-only with client certificates
// required, each started once: their own certificates are replaced on disk and reloaded in place.
let dir = '';
let ca: CertificateAuthority;
let kafka: KafkaServer | undefined;
let cassandra: CassandraServer | undefined;
let broker: PemFiles;
let node: PemFiles;
let client: PemFiles;

const BROKER_ID: IssueOptions = {
  commonName: 'kafka',
  dns: ['localhost'],
  ips: ['127.0.0.1'],
  uris: ['spiffe://trellis.test/ns/data/sa/kafka'],
};
const NODE_ID: IssueOptions = {
  commonName: 'cassandra',
  dns: ['localhost'],
  ips: ['127.0.0.1'],
  uris: ['spiffe://trellis.test/ns/data/sa/cassandra'],
};
/** The renewed certificates live 5 minutes: what a frequently rotated node certificate looks like. */
const SHORT_DAYS = 5 / 1_440;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-cert-reload-'));
  ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
  const tlsDir = join(dir, 'tls');
  broker = writePemFiles(tlsDir, 'kafka', await ca.issue(BROKER_ID), ca.rootPem);
  node = writePemFiles(tlsDir, 'cassandra', await ca.issue(NODE_ID), ca.rootPem);
  client = writePemFiles(
    tlsDir,
    'platform-admin',
    await ca.issue({ uris: ['spiffe://trellis.test/ns/platform/sa/admin'], usages: ['client'] }),
    ca.rootPem,
  );
  const probe = { cert: client.cert, key: client.key, ca: client.truststore };
  const t0 = Date.now();
  // Both at once: the second JVM starts while the first waits on its disk and its probe.
  const [k, c] = await Promise.allSettled([
    startKafka({
      dir: join(dir, 'kafka'),
      heapMb: 384,
      tls: { keystore: broker.keystore, truststore: broker.truststore },
      probe,
    }),
    startCassandra({
      dir: join(dir, 'cassandra'),
      heapMb: 512,
      clientTls: { keystore: node.keystore, truststore: node.truststore },
      internodeTls: { keystore: node.keystore, truststore: node.truststore },
      probe,
    }),
  ]);
  if (k.status === 'fulfilled') kafka = k.value;
  if (c.status === 'fulfilled') cassandra = c.value;
  if (k.status === 'rejected') throw k.reason;
  if (c.status === 'rejected') throw c.reason;
  console.info(
    `kafka ready in ${k.value.startupMs} ms, cassandra in ${c.value.startupMs} ms; both in ${Date.now() - t0} ms`,
  );
});

afterAll(async () => {
  await Promise.allSettled([kafka?.stop(), cassandra?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function liveKafka(): KafkaServer {
  if (!kafka) throw new Error('Kafka did not start');
  return kafka;
}
function liveCassandra(): CassandraServer {
  if (!cassandra) throw new Error('Cassandra did not start');
  return cassandra;
}

/** Field 22 of /proc/<pid>/stat: the process's start time, in clock ticks since boot. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name, field 3 (state) is index 0: starttime (22) is index 19.
  const t = fields[19];
  if (!t) throw new Error(`/proc/${pid}/stat has no starttime`);
  return t;
}

/** Issue a new certificate for `id` and swap `files` in by renames, as an agent renewing it would. */
async function renew(files: PemFiles, name: string, id: IssueOptions): Promise<string> {
  const staged = writePemFiles(
    join(dir, 'staged'),
    name,
    await ca.issue({ ...id, validDays: SHORT_DAYS }),
    ca.rootPem,
  );
  for (const k of ['key', 'cert', 'keystore'] as const) renameSync(staged[k], files[k]);
  return keystoreLeaf(files.keystore, 'test').serial;
}

/** A TLS connection opened now, to be used again after the reload. */
function openTls(ep: TlsEndpoint, files: TlsClientFiles): Promise<TLSSocket> {
  const certText = readFileSync(files.cert ?? '', 'utf8');
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: ep.host,
      port: ep.port,
      ca: [readFileSync(files.ca ?? '', 'utf8')],
      cert: splitPem(certText).certs.join(''),
      key: readFileSync(files.key ?? '', 'utf8'),
      rejectUnauthorized: true,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Write `req` and collect the reply until it holds `min` bytes. */
function roundTrip(s: TLSSocket, req: Buffer, min: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => done(new Error('no reply within 10 s')), 10_000);
    const onData = (b: Buffer): void => {
      chunks.push(b);
      if (Buffer.concat(chunks).length >= min) done();
    };
    const onEnd = (): void => done(new Error('connection closed'));
    function done(err?: Error): void {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onEnd);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    }
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onEnd);
    s.write(req);
  });
}

/** Kafka ApiVersions v0 on a raw connection: resolves the response's error code (0 = served). */
async function kafkaApiVersions(s: TLSSocket, correlationId: number): Promise<number> {
  const clientId = Buffer.from('raw');
  const body = Buffer.alloc(10 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2); // version 0
  body.writeInt32BE(correlationId, 4);
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  const reply = await roundTrip(s, Buffer.concat([size, body]), 10);
  expect(reply.readInt32BE(4)).toBe(correlationId);
  return reply.readInt16BE(8);
}

/** CQL OPTIONS (protocol v4) on a raw connection: resolves the reply's opcode (6 = SUPPORTED). */
async function cqlOptions(s: TLSSocket): Promise<number> {
  const frame = Buffer.from([0x04, 0x00, 0x00, 0x01, 0x05, 0, 0, 0, 0]);
  const reply = await roundTrip(s, frame, 9);
  expect(reply[0]).toBe(0x84);
  return reply[4] ?? -1;
}

describe('Kafka renews its listeners’ certificate without a restart (KIP-226)', () => {
  it('serves the new certificate on every listener; old and new connections work; same process', async () => {
    const k = liveKafka();
    const creds = { cert: client.cert, key: client.key, ca: client.truststore };
    const endpoints: TlsEndpoint[] = [
      { name: 'CLIENT', host: k.host, port: k.port },
      { name: 'BROKER', host: k.host, port: k.brokerPort },
      { name: 'CONTROLLER', host: k.host, port: k.controllerPort },
    ];
    const old = keystoreLeaf(broker.keystore, 'test');
    // Before: every listener presents the certificate the broker started with.
    for (const ep of endpoints)
      expect((await servedCertificate(ep, creds)).serial).toBe(old.serial);

    const raw = await openTls(endpoints[0] as TlsEndpoint, creds);
    const kc = new Kafka(kafkaClientConfig(k, creds, 'reload-test'));
    const admin = kc.admin();
    let producer: Producer | undefined;
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'reload.v1' }], waitForLeaders: true });
      producer = kc.producer();
      await producer.connect();
      await producer.send({ topic: 'reload.v1', acks: -1, messages: [{ value: 'before' }] });
      expect(await kafkaApiVersions(raw, 1)).toBe(0);
      const pid = k.process.pid;
      const started = startTime(pid);

      const serial = await renew(broker, 'kafka', BROKER_ID);
      expect(serial).not.toBe(old.serial);
      // The files alone change nothing: the broker still presents the old certificate.
      expect((await servedCertificate(endpoints[0] as TlsEndpoint, creds)).serial).toBe(old.serial);

      const r = await reloadKafkaCertificates(k, { client: creds, keystore: broker.keystore });
      console.info(`kafka reload: ${r.ms} ms until all three listeners served the new certificate`);
      expect(r.expected.serial).toBe(serial);
      for (const ep of endpoints) {
        const got = await servedCertificate(ep, creds);
        expect(got.serial).toBe(serial);
        expect(got.notAfter).toBe(r.expected.notAfter);
        // The renewed certificate lives minutes, not the original's days.
        expect(Date.parse(got.notAfter) - Date.now()).toBeLessThan(6 * 60_000);
      }
      // The connection opened before keeps its session (the old certificate) and is still served.
      expect(raw.getPeerCertificate().serialNumber.replace(/^0+/, '')).toBe(old.serial);
      expect(await kafkaApiVersions(raw, 2)).toBe(0);
      await producer.send({ topic: 'reload.v1', acks: -1, messages: [{ value: 'after' }] });
      // A new client connects (and verifies the new certificate).
      expect(await probeKafka(k, creds)).toBe(k.clusterId);
      // No per-broker override is left behind: server.properties still decides after a restart.
      const d = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }],
        includeSynonyms: false,
      });
      expect(
        (d.resources[0]?.configEntries ?? [])
          .filter((e) => e.configName.endsWith('ssl.keystore.location'))
          .map((e) => e.configSource),
      ).not.toContain(ConfigSource.DYNAMIC_BROKER_CONFIG);
      expect(k.process.pid).toBe(pid);
      expect(startTime(pid)).toBe(started);
    } finally {
      raw.destroy();
      await producer?.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  });
});

describe('Cassandra renews its node certificate without a restart (nodetool reloadssl)', () => {
  it('serves the new certificate to CQL and internode; old and new connections work; same process', async () => {
    const c = liveCassandra();
    const creds = { cert: client.cert, key: client.key, ca: client.truststore };
    // Internode peers present a node certificate.
    const peer = { cert: node.cert, key: node.key, ca: node.truststore };
    const native: TlsEndpoint = { name: 'native', host: c.host, port: c.nativePort };
    const storage: TlsEndpoint = { name: 'storage', host: '127.0.0.1', port: c.storagePort };
    const old = keystoreLeaf(node.keystore, 'test');
    expect((await servedCertificate(native, creds)).serial).toBe(old.serial);
    expect((await servedCertificate(storage, peer)).serial).toBe(old.serial);

    const raw = await openTls(native, creds);
    const driver = new Client(cassandraClientOptions(c, creds));
    try {
      await driver.connect();
      expect(await cqlOptions(raw)).toBe(0x06);
      const pid = c.process.pid;
      const started = startTime(pid);

      // The peer's own files are the node's: its handshake client below uses the renewed ones too.
      const serial = await renew(node, 'cassandra', NODE_ID);
      expect(serial).not.toBe(old.serial);
      expect((await servedCertificate(native, creds)).serial).toBe(old.serial);

      const r = await reloadCassandraCertificates(c, {
        keystore: node.keystore,
        client: creds,
      });
      console.info(`cassandra reload: ${r.ms} ms (nodetool reloadssl and the check)`);
      // Both contexts were rebuilt from the new files: CQL's and internode's.
      const log = readFileSync(c.logFile, 'utf8');
      for (const opts of ['client_encryption_options', 'server_encryption_options'])
        expect(log).toContain(`SSL certificates have been updated for ${opts}.`);
      const nat = await servedCertificate(native, creds);
      expect(nat.serial).toBe(serial);
      expect(nat.notAfter).toBe(r.expected.notAfter);
      expect(Date.parse(nat.notAfter) - Date.now()).toBeLessThan(6 * 60_000);
      expect((await servedCertificate(storage, peer)).serial).toBe(serial);

      expect(raw.getPeerCertificate().serialNumber.replace(/^0+/, '')).toBe(old.serial);
      expect(await cqlOptions(raw)).toBe(0x06);
      const rs = await driver.execute('SELECT release_version FROM system.local');
      expect(rs.first()?.get('release_version')).toBe(c.version);
      expect(await probeCassandra(c, creds)).toBe(c.version);
      expect(c.process.pid).toBe(pid);
      expect(startTime(pid)).toBe(started);
    } finally {
      raw.destroy();
      await driver.shutdown().catch(() => undefined);
    }
  });
});
