/**
 * The services' GroupConsumer through a network partition (issue 13, item 3; ADR 0027): the pod cluster
 * of publisher-partition.extended.test.ts, the ledger's consumer settings (a GroupConsumer subclass that
 * commits each batch it handled, as the ledger does), and the partition leader's link down for 45 s
 * while a producer keeps writing. kafkajs' consumer keeps fetching from the cut-off leader,
 * which answers nothing; GroupConsumer replaces a consumer whose fetches stall, so records published
 * during the cut must be consumed before the heal, and every acknowledged record consumed (a
 * redelivery after the replacement is allowed, and counted).
 * Extended tier (docs/toolchain.md, "Test tiers").
 */
import { execFileSync } from 'node:child_process';
import kafkajs from 'kafkajs';
import type { EachBatchPayload, Producer } from 'kafkajs';
import {
  ORDERS_POD_CLUSTER_IDS,
  startOrdersPodCluster,
  type NodeCut,
  type PodKafkaCluster,
} from '@trellis/local/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupConsumer } from '../src/consumer.ts';
import { createKafka } from '../src/kafka.ts';
import { keptLog, printWarnings } from './support/kept-log.ts';

const { ledger: LEDGER } = ORDERS_POD_CLUSTER_IDS;
const TOPIC = 'orders.v1';
const CUT_MS = 45_000;

let pc: PodKafkaCluster | undefined;
/** The consumer group: one whose coordinator is node 1, the node the test cuts off (see beforeAll). */
let group = '';
const loadavg = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Java's String.hashCode, which Kafka hashes a group id with. */
function javaHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: Math.abs, except that Integer.MIN_VALUE gives 0. */
function kafkaAbs(n: number): number {
  return n === -2_147_483_648 ? 0 : Math.abs(n);
}

function cluster(): PodKafkaCluster {
  if (!pc) throw new Error('the Kafka cluster did not start');
  return pc;
}

/** The ledger's consumer shape: each batch handled, then committed through its last record. */
class Recorder extends GroupConsumer {
  readonly name = 'kafka';
  /** Key → when it was first handled (ms since the epoch). */
  readonly handled = new Map<string, number>();
  redelivered = 0;
  protected waitingFor(): string | undefined {
    return undefined;
  }
  protected async handleBatch({
    batch,
    resolveOffset,
    heartbeat,
  }: EachBatchPayload): Promise<void> {
    for (const m of batch.messages) {
      const key = m.key?.toString() ?? '';
      if (this.handled.has(key)) this.redelivered++;
      else this.handled.set(key, Date.now());
      resolveOffset(m.offset);
    }
    const last = batch.messages.at(-1);
    if (last) await this.commitThrough(batch.topic, batch.partition, last.offset);
    await heartbeat();
  }
}

beforeAll(async () => {
  pc = await startOrdersPodCluster({
    stack: 'cpart',
    subnetBasePort: 50_000, // 198.18.50.0/24
    topic: TOPIC,
    leader: 1,
  });
  // The cut node is made the group's coordinator too, so every run meets both stalls of session 11's
  // runs: a fetch to the cut-off leader, and a commit to the cut-off coordinator (docs/reliability.md).
  // A group's coordinator leads the offsets topic's partition Utils.abs(hashCode(group)) % partitions
  // (Kafka's partitionFor), so a group name is picked whose partition node 1 leads; a second
  // topic grants the ledger that group.
  const admin = new kafkajs.Kafka(pc.clientConfig('node-1', 'trellis-test-admin')).admin();
  await admin.connect();
  try {
    const md = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
    const leaders = new Map((md.topics[0]?.partitions ?? []).map((p) => [p.partitionId, p.leader]));
    const coordinatorOf = (g: string): number | undefined =>
      leaders.get(kafkaAbs(javaHashCode(g)) % leaders.size);
    group =
      ['ledger', ...Array.from({ length: 50 }, (_, i) => `ledger-${i}`)].find(
        (g) => coordinatorOf(g) === 1,
      ) ?? '';
    if (!group) throw new Error(`no group name coordinated by node 1 (leaders ${[...leaders]})`);
  } finally {
    await admin.disconnect();
  }
  if (group !== 'ledger')
    await pc.topic(`${TOPIC}.group-grant`, {
      producers: [],
      consumers: [{ spiffeId: LEDGER, group }],
    });
  console.info(`kafka cluster in pods ready in ${pc.cluster.startupMs} ms; ${loadavg()}`);
}, 600_000);

afterAll(async () => {
  await pc?.stop();
});

describe("the ledger's GroupConsumer while the partition leader is cut off", () => {
  it('replaces the stalled consumer, consumes records published during the cut, and every acknowledged one', async () => {
    const c = cluster();
    const { log, lines } = keptLog();
    const kafkaOf = (name: string) => {
      const creds = c.clientCert(name);
      return createKafka(
        {
          brokers: c.cluster.bootstrap.split(','),
          clientId: name,
          tls: { caFile: creds.truststore, certFile: creds.cert, keyFile: creds.key },
        },
        log,
      );
    };
    // The writer here is a plain producer, renewed after a failed send, not the idempotent Publisher:
    // a new idempotent producer needs a producer id, which the brokers could not hand out for 30 s and
    // more in one run (docs/reliability.md), and this test is about the consumer.
    const newProducer = async (): Promise<Producer> => {
      const p = new kafkajs.Kafka({
        ...c.clientConfig('orders-api', 'orders-api'),
        requestTimeout: 3_000,
        retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
      }).producer({ idempotent: false, maxInFlightRequests: 1, metadataMaxAge: 2_000 });
      await p.connect();
      return p;
    };
    let producer = await newProducer();
    let producers = 1;
    const consumer = new Recorder(
      kafkaOf('ledger'),
      { topic: TOPIC, groupId: group, fetch: { maxWaitTimeInMs: 500 } },
      log,
    );
    await consumer.connect();

    const acked = new Map<string, number>(); // key → when it was published
    let cut: NodeCut | undefined;
    const deadline = Date.now() + 110_000;
    const writer = async (): Promise<void> => {
      for (let n = 0; n < 4_000 && Date.now() < deadline; n++) {
        if (cut?.healedAt && Date.now() - cut.healedAt > 10_000) return;
        const key = `o-${n}`;
        const sentAt = Date.now();
        try {
          await producer.send({
            topic: TOPIC,
            acks: -1,
            timeout: 2_000,
            messages: [{ key, value: key }],
          });
          acked.set(key, sentAt);
        } catch {
          // not acknowledged: not asserted on. A new producer finds the connected nodes.
          await producer.disconnect().catch(() => undefined);
          producer = await newProducer().catch(() => producer);
          producers++;
        }
        await sleep(10);
      }
    };
    try {
      const callers = [writer()];
      await sleep(3_000);
      expect(consumer.handled.size).toBeGreaterThan(0);
      cut = c.cut(1, CUT_MS);
      await Promise.all(callers);
      // Every acknowledged record consumed (bounded wait after the heal).
      const t0 = Date.now();
      while ([...acked.keys()].some((k) => !consumer.handled.has(k)) && Date.now() - t0 < 60_000)
        await sleep(250);
    } finally {
      cut?.heal();
      await producer.disconnect().catch(() => undefined);
      await consumer.close().catch(() => undefined);
    }
    if (!cut) throw new Error('the node was never cut off');
    const { at: cutAt, healedAt } = cut;
    const during = [...acked].filter(([, at]) => at > cutAt && at < healedAt);
    const consumedDuringCut = during.filter(
      ([k]) => (consumer.handled.get(k) ?? Infinity) < healedAt,
    );
    const firstConsumed = Math.min(...consumedDuringCut.map(([k]) => consumer.handled.get(k) ?? 0));
    const missing = [...acked.keys()].filter((k) => !consumer.handled.has(k));
    // When consuming resumed: the first record published during the cut to be handled.
    const resumed = Math.min(...during.map(([k]) => consumer.handled.get(k) ?? Infinity));
    console.info(
      `cut node 1 (leader, and coordinator of group ${group}) for ${healedAt - cutAt} ms: ${acked.size} acknowledged, ${during.length} of them ` +
        `published during the cut, ${consumedDuringCut.length} of those consumed before the heal` +
        (consumedDuringCut.length ? ` (the first ${firstConsumed - cutAt} ms after the cut)` : '') +
        `; consuming resumed ${resumed - cutAt} ms after the cut (${resumed - healedAt} ms after the heal)` +
        `; ${consumer.redelivered} redelivered, ${missing.length} not consumed; ${consumer.replaced()} ` +
        `consumer(s) replaced, ${producers} producers used; ${loadavg()}`,
    );
    printWarnings(lines, cutAt);
    expect(healedAt - cutAt).toBeGreaterThanOrEqual(CUT_MS - 50);
    expect(during.length).toBeGreaterThan(0);
    // The stalled consumer was replaced, and the new one consumed records published during the cut.
    expect(consumer.replaced()).toBeGreaterThan(0);
    expect(consumedDuringCut.length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
