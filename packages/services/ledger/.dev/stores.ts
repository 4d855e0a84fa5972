import { writeFileSync } from 'node:fs';
import {
  startCassandra,
  startKafka,
  cassandraClientOptions,
  kafkaClientConfig,
} from '@trellis/local/harness';
import cassandra from 'cassandra-driver';
import kafkajs from 'kafkajs';
const dir = '/tmp/svc-dev';
const [c, k] = await Promise.all([
  startCassandra({ dir: dir + '/cassandra' }),
  startKafka({ dir: dir + '/kafka' }),
]);
const cql = new cassandra.Client(cassandraClientOptions(c));
for (const ks of ['orders', 'ledger'])
  await cql.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  );
await cql.shutdown();
const admin = new kafkajs.Kafka(kafkaClientConfig(k, {}, 'a')).admin();
await admin.connect();
await admin.createTopics({
  topics: [{ topic: 'orders.v1', numPartitions: 3, replicationFactor: 1 }],
  waitForLeaders: true,
});
await admin.disconnect();
writeFileSync(
  dir + '/env',
  `CASSANDRA_CONTACT_POINTS=${c.contactPoint}\nKAFKA_BROKERS=${k.bootstrap}\n`,
);
console.log('ready', c.contactPoint, k.bootstrap);
await new Promise(() => {});
