/**
 * The services' Publisher through a network partition (issue 13, item 3; ADR 0027, "A network
 * partition"): a 3-node KRaft cluster, each node in a pod of its own, and the partition leader's link
 * taken down for 45 s while the Publisher orders-api uses (created as orders-api creates it, with its
 * production timeouts) publishes a steady stream. kafkajs keeps asking the cut-off leader, which
 * answers nothing; the Publisher replaces a producer whose request stalls, so records must go on
 * being acknowledged during the cut through the new leader. Then every acknowledged record is read
 * back exactly once. Extended tier: pods, three JVMs and a 45 s cut (docs/toolchain.md, "Test tiers").
 */
import { execFileSync } from 'node:child_process';
import kafkajs from 'kafkajs';
import {
  countKeys,
  lostAndDuplicated,
  startOrdersPodCluster,
  type NodeCut,
  type PodKafkaCluster,
} from '@trellis/local/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../src/kafka.ts';
import { keptLog, printWarnings } from './support/kept-log.ts';
import { Publisher } from '../src/publisher.ts';

const TOPIC = 'orders.intake.v1';
const CUT_MS = 45_000;
/** orders-api's own publish timeout (PUBLISH_TIMEOUT_MS' default); stallMs is left at its default. */
const TIMEOUT_MS = 5_000;

let pc: PodKafkaCluster | undefined;
const loadavg = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cluster(): PodKafkaCluster {
  if (!pc) throw new Error('the Kafka cluster did not start');
  return pc;
}

beforeAll(async () => {
  // Leader on the first bootstrap broker: a new producer seeds itself there first, the worst node to lose.
  pc = await startOrdersPodCluster({
    stack: 'ppart',
    subnetBasePort: 49_000, // 198.18.49.0/24
    topic: TOPIC,
    leader: 1,
  });
  console.info(`kafka cluster in pods ready in ${pc.cluster.startupMs} ms; ${loadavg()}`);
}, 600_000);

afterAll(async () => {
  await pc?.stop();
});

describe("orders-api's Publisher while the partition leader is cut off", () => {
  it('replaces the stalled producer and goes on publishing through the new leader; nothing acknowledged is lost or duplicated', async () => {
    const c = cluster();
    const { log, lines } = keptLog();
    const creds = c.clientCert('orders-api');
    const publisher = new Publisher(
      createKafka(
        {
          brokers: c.cluster.bootstrap.split(','),
          clientId: 'orders-api',
          tls: { caFile: creds.truststore, certFile: creds.cert, keyFile: creds.key },
        },
        log,
      ),
      { topic: TOPIC, timeoutMs: TIMEOUT_MS },
      log,
    );
    await publisher.connect();

    const admin = new kafkajs.Kafka(c.clientConfig('node-1', 'trellis-test-admin')).admin();
    await admin.connect();
    const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    const victim = md.topics[0]?.partitions[0]?.leader ?? -1;
    expect([1, 2, 3]).toContain(victim);

    const acked: string[] = [];
    const failures: string[] = [];
    let cut: NodeCut | undefined;
    let firstAckAfterCut = 0;
    let ackedDuringCut = 0;
    // Four callers, like concurrent requests, each awaiting its own publish. Bounded: 2,000 records
    // per caller and 110 s; records go on for 10 s after the heal.
    const deadline = Date.now() + 110_000;
    let next = 0;
    const caller = async (): Promise<void> => {
      for (let n = 0; n < 2_000 && Date.now() < deadline; n++) {
        if (cut?.healedAt && Date.now() - cut.healedAt > 10_000) return;
        const key = `o-${next++}`;
        const sentAt = Date.now();
        try {
          await publisher.publish({ key, value: key });
          acked.push(key);
          // Only records published after the cut count: one in flight at the cut may be acked at once.
          if (cut && sentAt > cut.at && !cut.healedAt) {
            ackedDuringCut++;
            if (!firstAckAfterCut) firstAckAfterCut = Date.now();
          }
        } catch (err) {
          if (failures.length < 2_000)
            failures.push(`${Date.now() - (cut?.at ?? 0)} ms: ${String(err)}`);
        }
        await sleep(20);
      }
    };
    const callers = [caller(), caller(), caller(), caller()];
    try {
      await sleep(3_000); // records flow before the cut
      expect(acked.length).toBeGreaterThan(0);
      cut = c.cut(victim, CUT_MS);
      await Promise.all(callers);
    } finally {
      cut?.heal();
      await publisher.close().catch(() => undefined);
    }
    if (!cut) throw new Error('the node was never cut off');
    const { at: cutAt, healedAt } = cut;
    const stalls = lines.filter(
      (l) => l.msg === 'produce request stalled; replacing the producer, with new connections',
    ).length;
    console.info(
      `cut node ${victim} (leader) for ${healedAt - cutAt} ms: ${acked.length} acknowledged ` +
        `(${ackedDuringCut} published and acknowledged during the cut, the first ${firstAckAfterCut ? firstAckAfterCut - cutAt : 'none'} ms ` +
        `after it), ${failures.length} failed publishes (first: ${failures.slice(0, 2).join(' | ')}), ` +
        `${publisher.replaced()} producer(s) replaced; ${loadavg()}`,
    );
    // What the publisher and kafkajs said (warnings and up), relative to the cut.
    printWarnings(lines, cutAt);
    expect(healedAt - cutAt).toBeGreaterThanOrEqual(CUT_MS - 50);
    // The stalled producer was replaced, and the new one carried records during the cut.
    expect(publisher.replaced()).toBeGreaterThan(0);
    expect(stalls).toBeGreaterThan(0);
    expect(ackedDuringCut).toBeGreaterThan(0);

    // Every acknowledged record exactly once, read after the heal from the three nodes.
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    await admin.disconnect();
    const end = Number(offsets[0]?.high ?? 0);
    const consumer = new kafkajs.Kafka(c.clientConfig('ledger', 'ledger')).consumer({
      groupId: 'ledger',
      sessionTimeout: 10_000,
    });
    const seen = await countKeys(consumer, TOPIC, end);
    const { lost, duplicated } = lostAndDuplicated(acked, seen);
    console.info(
      `read back ${seen.size} keys up to offset ${end}: lost ${lost.length}, duplicated ${duplicated.length}`,
    );
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
  });
});
