/**
 * The services against real stores, started once for three suites (CI time: each Cassandra + Kafka
 * start costs tens of seconds on a 2-core runner, and these suites used to start their own):
 * - services/orders-writer.suite.ts: the batch writer's exactly-once effect (in process, kill -9, SQS);
 * - services/orders-api-write-path.suite.ts: orders-api's queue-first write path (SQS and Kafka);
 * - services/services.suite.ts: orders-api → orders-writer → ledger with TLS, identities, traces,
 *   replays and SIGTERM drains.
 * One Cassandra 5, one Kafka 4 (KRaft) and one ElasticMQ (support/service-stores.ts), TLS with client
 * certificates everywhere. The suites isolate themselves by topic, consumer group, queue and SKU; they
 * share keyspace `orders` (fixed by the contract), so the writer suite, which counts the whole table,
 * runs first (vitest runs the describes of a file in order).
 */
import { afterAll, beforeAll } from 'vitest';
import { startStores, stopStores } from './support/service-stores.ts';
import { ordersWriterSuite } from './services/orders-writer.suite.ts';
import { ordersApiWritePathSuite } from './services/orders-api-write-path.suite.ts';
import { servicesSuite } from './services/services.suite.ts';

beforeAll(async () => {
  await startStores();
}, 400_000);

afterAll(async () => {
  await stopStores();
}, 120_000);

ordersWriterSuite();
ordersApiWritePathSuite();
servicesSuite();
