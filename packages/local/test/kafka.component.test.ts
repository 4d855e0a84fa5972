import { Kafka } from 'kafkajs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaClientConfig, type KafkaServer } from '../src/harness/kafka-client.ts';
import { startKafka } from '../src/harness/kafka.ts';
import { CertificateAuthority, writePemFiles, type PemFiles } from '../src/harness/tls.ts';
import { KAFKA_VERSION, kafka } from '../src/toolchain/kafka.ts';

// One real Kafka 4 node (KRaft, broker + controller) with SSL on every listener and client certificates required.
let dir = '';
let server: KafkaServer | undefined;
let broker: PemFiles;
let client: PemFiles;
let rogue: PemFiles;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-kafka-'));
  const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
  const tlsDir = join(dir, 'tls');
  broker = writePemFiles(
    tlsDir,
    'kafka',
    await ca.issue({
      commonName: 'kafka',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
      uris: ['spiffe://trellis.test/ns/data/sa/kafka'],
    }),
    ca.rootPem,
  );
  client = writePemFiles(
    tlsDir,
    'orders-api',
    await ca.issue({ uris: ['spiffe://trellis.test/ns/orders/sa/orders-api'], usages: ['client'] }),
    ca.rootPem,
  );
  const otherCa = await CertificateAuthority.create({ commonName: 'Someone else' });
  rogue = writePemFiles(
    tlsDir,
    'rogue',
    await otherCa.issue({
      uris: ['spiffe://trellis.test/ns/orders/sa/orders-api'],
      usages: ['client'],
    }),
    ca.rootPem,
  );

  const t0 = Date.now();
  await kafka.ensure();
  const installMs = Date.now() - t0;
  server = await startKafka({
    dir: join(dir, 'node'),
    tls: { keystore: broker.keystore, truststore: broker.truststore },
    probe: { cert: client.cert, key: client.key, ca: client.truststore },
  });
  console.info(
    `kafka ${server.version}: ensure ${installMs} ms, format ${server.formatMs} ms, ready in ${server.startupMs} ms on ${server.bootstrap}`,
  );
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function live(): KafkaServer {
  if (!server) throw new Error('Kafka did not start');
  return server;
}

/** The error a client without acceptable credentials gets from a metadata request. */
async function describeError(
  creds: Parameters<typeof kafkaClientConfig>[1],
  tls = true,
): Promise<string> {
  const cfg = kafkaClientConfig({ ...live(), tls }, creds, 'trellis-test-refused');
  const admin = new Kafka({ ...cfg, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return 'no error';
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

describe('Kafka 4 over SSL with client certificates', () => {
  it('runs the pinned version with SSL on the client, inter-broker and controller listeners', () => {
    expect(live().version).toBe(KAFKA_VERSION);
    const props = readFileSync(join(live().dir, 'conf', 'server.properties'), 'utf8');
    expect(props).toContain('listener.security.protocol.map=CLIENT:SSL,BROKER:SSL,CONTROLLER:SSL');
    expect(props).toContain('ssl.client.auth=required');
    // The controller and inter-broker connections are made and authenticated: the broker registered.
    expect(readFileSync(live().logFile, 'utf8')).toMatch(/Kafka Server started/);
  });

  it('produces and consumes a record with a client certificate', async () => {
    const k = new Kafka(
      kafkaClientConfig(live(), { cert: client.cert, key: client.key, ca: client.truststore }),
    );
    const admin = k.admin();
    const producer = k.producer();
    const consumer = k.consumer({ groupId: 'ledger', sessionTimeout: 10_000 });
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: 'orders.v1', numPartitions: 1 }],
        waitForLeaders: true,
      });
      await producer.connect();
      await producer.send({
        topic: 'orders.v1',
        acks: -1,
        messages: [{ key: 'o-1', value: JSON.stringify({ id: 'o-1', total: 42 }) }],
      });
      await consumer.connect();
      await consumer.subscribe({ topic: 'orders.v1', fromBeginning: true });
      const got = await new Promise<{ key: string; value: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no record consumed within 60 s')), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
          },
        });
      });
      expect(got.key).toBe('o-1');
      expect(JSON.parse(got.value)).toEqual({ id: 'o-1', total: 42 });
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  });

  it('refuses a TLS client without a certificate', async () => {
    // The broker (Java) answers a missing certificate with a bad_certificate alert.
    expect(await describeError({ ca: client.truststore })).toMatch(
      /Connection error: .*alert (bad certificate|certificate required)/,
    );
  });

  it('refuses a client certificate from an untrusted CA', async () => {
    expect(
      await describeError({ cert: rogue.cert, key: rogue.key, ca: client.truststore }),
    ).toMatch(/Connection error: .*alert (certificate unknown|unknown ca|bad certificate)/);
  });

  it('refuses a plaintext client', async () => {
    // The SSL listener reads the plaintext ApiVersions request as a bad TLS record and hangs up.
    expect(await describeError({}, false)).toMatch(/Closed connection|ECONNRESET/);
  });
});

describe('startKafka failures', () => {
  it('names the bad setting when the storage format rejects the config', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'trellis-kafka-bad-'));
    try {
      const err = await startKafka({ dir: bad, properties: { 'num.partitions': 'many' } }).catch(
        (e: unknown) => e as Error,
      );
      expect(String(err)).toMatch(/kafka-storage format failed/);
      expect(String(err)).toMatch(/num\.partitions/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
