/**
 * The stores the services' component suites share (infra/local/test/services.component.test.ts): one
 * Cassandra 5, one Kafka 4 (KRaft) and one ElasticMQ, started once per file instead of once per suite
 * (each start costs tens of seconds of the CI run). TLS and client certificates are required, as in the
 * local stack; Cassandra authenticates clients by the SPIFFE ID in their certificate
 * (MutualTlsAuthenticator) and authorizes per keyspace: orders-api may only read keyspace orders,
 * orders-writer writes it, ledger writes keyspace ledger (ADR 0022). The test's own clients log in as
 * `tester`, a superuser.
 *
 * The suites share keyspace `orders` (fixed by the contract) and isolate themselves by topic, consumer
 * group and SKU/queue names; a suite that needs the table empty runs first (see the test file).
 */
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  cassandraClientOptions,
  kafkaClientConfig,
  startCassandra,
  waitUntil,
  startElasticMq,
  startKafka,
  writePemFiles,
  type CassandraServer,
  type ElasticMqInstance,
  type KafkaServer,
  type PemFiles,
} from '@trellis/local/harness';
import cassandra from 'cassandra-driver';
import kafkajs from 'kafkajs';

export const TRUST = 'spiffe://trellis.test';
/** The SPIFFE ID the services check Cassandra's certificate against. */
export const CASSANDRA_ID = `${TRUST}/ns/data/sa/cassandra`;
/** Not a secret: ElasticMQ checks no credentials, but the SDK signs every request. */
export const SQS_CREDENTIALS = { accessKeyId: 'elasticmq', secretAccessKey: 'elasticmq' };
/** orders-api's SQS FIFO order queue (the write-path suite): longer than the test, never seen twice. */
export const WRITE_PATH_QUEUE = 'orders.fifo';
/** orders-writer's SQS FIFO intake queue (the writer suite), with a short visibility timeout. */
export const WRITER_QUEUE = 'intake.fifo';
export const WRITER_QUEUE_VISIBILITY_S = 2;

/** Key material of each workload (and of the test's own clients, `tester`). */
export type Pki = Record<
  'cassandra' | 'kafka' | 'ordersApi' | 'ordersWriter' | 'ledger' | 'tester',
  PemFiles
>;

/** The running stores and the test's superuser clients. */
export interface Stores {
  /** Scratch directory of the file: stores' data, keys, service logs. Removed by {@link stopStores}. */
  dir: string;
  pki: Pki;
  cass: CassandraServer;
  kafka: KafkaServer;
  sqs: ElasticMqInstance;
  /** Cassandra as `tester` (superuser). */
  cql: cassandra.Client;
  /** Kafka admin as `tester`. */
  admin: kafkajs.Admin;
}

/** Client TLS files of one workload, as the services take them. */
export const tlsOf = (f: PemFiles) => ({ caFile: f.truststore, certFile: f.cert, keyFile: f.key });
/** Client credentials of one workload, as the harness clients take them. */
export const creds = (f: PemFiles) => ({ cert: f.cert, key: f.key, ca: f.truststore });

let current: Stores | undefined;
let dir: string | undefined;
const parts: {
  cass?: CassandraServer;
  kafka?: KafkaServer;
  sqs?: ElasticMqInstance;
  cql?: cassandra.Client;
  admin?: kafkajs.Admin;
} = {};
const logs: WriteStream[] = [];

/** The running stores; throws before {@link startStores} has finished. */
export function stores(): Stores {
  if (!current) throw new Error('stores not started');
  return current;
}

/** A log file in the scratch directory, as the services' `log` option takes it. */
export function logTo(name: string): { level: string; stream: WriteStream } {
  const stream = createWriteStream(join(stores().dir, `${name}.log`));
  logs.push(stream);
  return { level: 'info', stream };
}

/** Start Cassandra, Kafka and ElasticMQ at once (startup is mostly waiting), with keys, roles, grants. */
export async function startStores(): Promise<Stores> {
  dir = mkdtempSync(join(tmpdir(), 'trellis-services-'));
  const ca = await CertificateAuthority.create({ commonName: 'Trellis services test CA' });
  const tlsDir = join(dir, 'tls');
  const server = (name: string) =>
    ca.issue({ commonName: name, ips: ['127.0.0.1'], uris: [`${TRUST}/ns/data/sa/${name}`] });
  const client = (sa: string) =>
    ca.issue({ uris: [`${TRUST}/ns/shop/sa/${sa}`], usages: ['client'] });
  const pki: Pki = {
    cassandra: writePemFiles(tlsDir, 'cassandra', await server('cassandra'), ca.rootPem),
    kafka: writePemFiles(tlsDir, 'kafka', await server('kafka'), ca.rootPem),
    ordersApi: writePemFiles(tlsDir, 'orders-api', await client('orders-api'), ca.rootPem),
    ordersWriter: writePemFiles(tlsDir, 'orders-writer', await client('orders-writer'), ca.rootPem),
    ledger: writePemFiles(tlsDir, 'ledger', await client('ledger'), ca.rootPem),
    tester: writePemFiles(tlsDir, 'tester', await client('tester'), ca.rootPem),
  };

  const started = await Promise.allSettled([
    // As the local stack runs it: no passwords, the SPIFFE ID of the client certificate is the login,
    // mapped to a role with grants on the service's own keyspace only.
    startCassandra({
      dir: join(dir, 'cassandra'),
      clientTls: { keystore: pki.cassandra.keystore, truststore: pki.cassandra.truststore },
      authenticator: {
        className: 'org.apache.cassandra.auth.MutualTlsAuthenticator',
        parameters: {
          validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator',
        },
      },
      authorizer: 'CassandraAuthorizer',
      bootstrap: [
        // What the platform does from the policy model: keyspaces, roles, grants, identities.
        ...['orders', 'ledger'].map(
          (ks) =>
            `CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
        ),
        ...(
          [
            // orders-api only reads orders (ADR 0022); the writer and ledger write and migrate theirs.
            ['orders_api', 'orders', 'orders-api', ['SELECT']],
            ['orders_writer', 'orders', 'orders-writer', ['CREATE', 'ALTER', 'SELECT', 'MODIFY']],
            ['ledger', 'ledger', 'ledger', ['CREATE', 'ALTER', 'SELECT', 'MODIFY']],
          ] as const
        ).flatMap(([role, ks, sa, permissions]) => [
          `CREATE ROLE ${role} WITH LOGIN = true`,
          // No grant outside the service's own keyspace.
          ...permissions.map((p) => `GRANT ${p} ON KEYSPACE ${ks} TO ${role}`),
          `ADD IDENTITY '${TRUST}/ns/shop/sa/${sa}' TO ROLE '${role}'`,
        ]),
        'CREATE ROLE tester WITH LOGIN = true AND SUPERUSER = true',
        `ADD IDENTITY '${TRUST}/ns/shop/sa/tester' TO ROLE 'tester'`,
      ],
      probe: creds(pki.tester),
    }).then((s) => (parts.cass = s)),
    startKafka({
      dir: join(dir, 'kafka'),
      tls: { keystore: pki.kafka.keystore, truststore: pki.kafka.truststore },
      probe: creds(pki.tester),
    }).then((s) => (parts.kafka = s)),
    startElasticMq({
      dir: join(dir, 'elasticmq'),
      queues: [
        { name: WRITE_PATH_QUEUE, fifo: true, visibilityTimeoutSeconds: 120 },
        { name: WRITER_QUEUE, fifo: true, visibilityTimeoutSeconds: WRITER_QUEUE_VISIBILITY_S },
      ],
    }).then((s) => (parts.sqs = s)),
  ]);
  // One failed start fails the file; the others were started and are stopped by stopStores.
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  const { cass, kafka, sqs } = parts;
  if (!cass || !kafka || !sqs) throw new Error('stores not started');
  process.stderr.write(
    `[services] cassandra ${cass.version} up in ${cass.startupMs} ms, kafka ${kafka.version} in ${kafka.startupMs} ms, elasticmq in ${sqs.startupMs} ms\n`,
  );
  const cql = (parts.cql = new cassandra.Client(cassandraClientOptions(cass, creds(pki.tester))));
  const admin = (parts.admin = new kafkajs.Kafka(
    kafkaClientConfig(kafka, creds(pki.tester), 'test-admin'),
  ).admin());
  await admin.connect();
  current = { dir, pki, cass, kafka, sqs, cql, admin };
  return current;
}

/** Stop whatever {@link startStores} started (also after a failed start) and remove the scratch dir. */
export async function stopStores(): Promise<void> {
  await parts.admin?.disconnect().catch(() => undefined);
  await parts.cql?.shutdown().catch(() => undefined);
  await Promise.allSettled([parts.cass?.stop(), parts.kafka?.stop(), parts.sqs?.stop()]);
  for (const s of logs) s.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
  current = undefined;
}

/**
 * Create topics (3 partitions, as the platform does) and wait until every partition has a leader.
 * Not kafkajs' `waitForLeaders`: it retries only LEADER_NOT_AVAILABLE, and the KRaft broker may still
 * answer UNKNOWN_TOPIC_OR_PARTITION for a moment after the create, which failed the whole file.
 */
export async function createTopics(topics: readonly string[]): Promise<void> {
  const { admin } = stores();
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })),
    waitForLeaders: false,
  });
  await waitUntil(
    async () => {
      try {
        const md = await admin.fetchTopicMetadata({ topics: [...topics] });
        return (
          md.topics.length === topics.length &&
          md.topics.every(
            (t) => t.partitions.length === 3 && t.partitions.every((p) => p.leader >= 0),
          )
        );
      } catch {
        return false;
      }
    },
    { what: `leaders for topics ${topics.join(', ')}`, timeoutMs: 60_000, intervalMs: 200 },
  );
}
