import kafkajs, { logLevel, type LogEntry, type Producer } from 'kafkajs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countKeys, lostAndDuplicated } from '../src/harness/kafka-read.ts';
import { describeKafkaQuorum, type QuorumAnswer } from '../src/harness/kafka-cluster.ts';
import {
  ORDERS_POD_CLUSTER_IDS as IDS,
  startPodKafkaCluster,
  type NodeCut,
  type PodKafkaCluster,
} from '../src/harness/kafka-pod-cluster.ts';
import { waitUntil } from '../src/harness/wait.ts';

// Issue 13: during a 45 s cut of one node, a new idempotent producer sometimes got "the coordinator is
// loading" (COORDINATOR_LOAD_IN_PROGRESS, kafkajs GROUP_LOAD_IN_PROGRESS) to every InitProducerId
// (docs/reliability.md, "A limit that replacing cannot get past"). Hypothesis: a KRaft broker takes
// producer-id blocks from the active controller (AllocateProducerIds), and the cut node was it. This
// file measures it on the pod cluster of kafka-partition.extended.test.ts: (A) the active controller
// cut for 45 s, (B) as a control, a node that is neither the controller nor the topic's leader. In
// each, 2 s into the cut, a brand-new idempotent producer (as the services' Publisher makes it) sends
// one record to a topic whose leader is not cut; its first ack and every error are recorded and
// printed. Case A asserts only what three runs showed alike (see docs/reliability.md, "Producer ids
// during a cut of the active controller").
const CUT_MS = 45_000;
/** The Publisher's default stallMs: a producer that neither connects nor sends in this is replaced. */
const STALL_MS = 15_000;

let pc: PodKafkaCluster | undefined;
const fileStart = Date.now();
const loadavg = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pcs(): PodKafkaCluster {
  if (!pc) throw new Error('the Kafka cluster did not start');
  return pc;
}

let probes = 0;
/** The metadata quorum, asked through the controller listeners of `via` only. */
async function quorum(via: number[]): Promise<QuorumAnswer | undefined> {
  const c = pcs().cluster;
  const first = via[0] ?? 1;
  const [a] = await describeKafkaQuorum(join(pcs().dir, `probe-${++probes}`), [
    {
      bootstrap: via.map((i) => `${c.node(i).host}:${c.node(i).controllerPort}`).join(','),
      controllers: true,
      tls: {
        keystore: pcs().nodeCert(first).keystore,
        truststore: pcs().nodeCert(first).truststore,
      },
    },
  ]);
  return a;
}
const leaderOf = (a: QuorumAnswer | undefined): string =>
  a?.ok ? String(a.leaderId) : `? (${a ? `${a.error}: ${a.message}` : 'no answer'})`;

async function controllerNow(): Promise<number> {
  const a = await quorum([1, 2, 3]);
  if (!a?.ok) throw new Error(`describeMetadataQuorum failed: ${JSON.stringify(a)}`);
  return a.leaderId;
}

/** A kafkajs client as createKafka (packages/services/platform/src/kafka.ts) makes it, logging to `onLog`. */
function serviceKafka(onLog: (e: LogEntry) => void): kafkajs.Kafka {
  return new kafkajs.Kafka({
    ...pcs().clientConfig('orders-api', 'orders-api'),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: () => onLog,
  });
}

/**
 * A producer with the Publisher's options (packages/services/platform/src/publisher.ts), but with
 * bounded retries (the Publisher's are unbounded, bounded by its stallMs instead), so that an
 * abandoned producer stops on its own rather than retrying in the background.
 */
function newProducer(kafka: kafkajs.Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 2_000 },
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms (stall)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const isLoading = (s: string): boolean => /coordinator is loading|LOAD_IN_PROGRESS/i.test(s);

/** Runs of the same error from the same producer, as `from–to s: who: n× what`. */
function squeeze(events: { at: number; who: string; what: string }[]): string[] {
  const out: { from: number; to: number; who: string; what: string; n: number }[] = [];
  for (const e of events) {
    const last = out.at(-1);
    if (last && last.who === e.who && last.what === e.what) {
      last.to = e.at;
      last.n++;
    } else out.push({ from: e.at, to: e.at, who: e.who, what: e.what, n: 1 });
  }
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  return out.map((r) =>
    r.n === 1
      ? `${s(r.from)} s: ${r.who}: ${r.what}`
      : `${s(r.from)}–${s(r.to)} s: ${r.who}: ${r.n}× ${r.what}`,
  );
}

/** The node whose pod address `broker` (`host:port`) is; 0 if none. */
const nodeAt = (broker: string): number =>
  [1, 2, 3].find((i) => broker.startsWith(`${pcs().address(i)}:`)) ?? 0;

/** Remember the node that answered the producer's last InitProducerId (with an id or an error). */
function trackIdFrom(producer: Producer, set: (node: number) => void): void {
  producer.on(producer.events.REQUEST, (e) => {
    if (e.payload.apiName === 'InitProducerId') set(nodeAt(e.payload.broker));
  });
}

interface CaseResult {
  label: string;
  victim: number;
  topicLeader: number;
  controllerBefore: number;
  controllerDuring: string;
  /** The quorum leader 10 s into the cut, asked through the two connected nodes; 0: no answer. */
  controllerDuringId: number;
  controllerAfter: number;
  /** ms from the cut to the first ack of a producer started after it; 0: none during the cut. */
  firstAckMs: number;
  producers: number;
  loadingErrors: number;
  errors: string[];
  /** The node that gave the first acknowledged new producer its id. */
  idFrom: number;
  acked: string[];
  isrBackMs: number;
  victimCaughtUp: boolean;
}

async function runCase(
  label: string,
  pick: (controller: number) => [number, number],
): Promise<CaseResult> {
  const c = pcs();
  const controllerBefore = await controllerNow();
  const [victim, topicLeader] = pick(controllerBefore);
  const topic = `pid.${label.toLowerCase()}`;
  const group = `ledger-${label.toLowerCase()}`;
  await c.topic(topic, {
    producers: [IDS.ordersApi],
    consumers: [{ spiffeId: IDS.ledger, group }],
    leader: topicLeader,
  });
  const acked: string[] = [];
  const events: { at: number; who: string; what: string }[] = [];
  let loadingErrors = 0;
  let cut: NodeCut | undefined;
  const since = (): number => Date.now() - (cut?.at ?? Date.now());
  const t = (): string => `${(since() / 1000).toFixed(1)} s`;
  let idFrom = 0;

  // No producer before the cut: a broker takes a block of producer ids only when first asked for one,
  // so here no broker holds a block yet (case A) and a new producer's id needs the controller. With
  // a producer before the cut, a run's new producer got its id from the broker that already held a
  // block, at once (docs/reliability.md, "Producer ids during a cut of the active controller").
  let firstAck = 0;
  let producers = 0;
  let controllerDuring = '';
  let controllerDuringId = 0;
  let during: Promise<void> | undefined;
  try {
    cut = c.cut(victim, CUT_MS);
    const { at } = cut;
    // Asked through the two connected nodes, 10 s into the cut (a new leader is elected by then).
    during = sleep(10_000)
      .then(() => quorum([1, 2, 3].filter((i) => i !== victim)))
      .then(
        (a) => {
          controllerDuring = `${leaderOf(a)} at ${t()}`;
          if (a?.ok) controllerDuringId = a.leaderId;
        },
        (err: unknown) => void (controllerDuring = `? (${(err as Error).message})`),
      );
    await sleep(2_000);
    // Fresh producers, one after the other, until one's first send is acknowledged or the cut ends.
    while (!firstAck && Date.now() < at + CUT_MS - 1_000 && producers < 20) {
      const n = ++producers;
      const producer = newProducer(
        serviceKafka((e) => {
          if (e.level > logLevel.ERROR) return;
          const { message, error, broker } = e.log as {
            message: string;
            error?: string;
            broker?: string;
          };
          const what = `${message}${error ? `: ${error}` : ''}${broker ? ` (node ${nodeAt(broker)})` : ''}`;
          if (isLoading(what)) loadingErrors++;
          if (events.length < 500) events.push({ at: since(), who: `producer ${n} log`, what });
        }),
      );
      let from = 0;
      trackIdFrom(producer, (node) => (from = node));
      const key = `${label}-${n}`;
      try {
        await within(producer.connect(), STALL_MS, `producer ${n} connect`);
        await within(
          producer.send({ topic, acks: -1, timeout: 5_000, messages: [{ key, value: key }] }),
          STALL_MS,
          `producer ${n} send`,
        );
        acked.push(key);
        firstAck = Date.now();
        idFrom = from;
      } catch (err) {
        const e = err as Error & { type?: string };
        const what = `${e.name}${e.type ? ` ${e.type}` : ''}: ${e.message}`;
        events.push({ at: since(), who: `producer ${n} gave up`, what });
      } finally {
        void producer.disconnect().catch(() => undefined);
      }
    }
  } finally {
    await during;
    // Wait out the cut on its own timer (bounded), then heal in any case.
    for (let i = 0; i < 60 && cut && !cut.healedAt; i++) await sleep(1_000);
    cut?.heal();
  }
  if (!cut) throw new Error('the node was never cut off');
  const { at, healedAt } = cut;

  // Heal: the cut node back in the topic's ISR and caught up in the quorum.
  const admin = new kafkajs.Kafka(c.clientConfig('node-1', 'trellis-test-admin')).admin();
  await admin.connect();
  await waitUntil(
    async () => {
      const md = await admin.fetchTopicMetadata({ topics: [topic] });
      return (md.topics[0]?.partitions[0]?.isr.length ?? 0) === 3;
    },
    { what: `node ${victim} back in the ISR of ${topic}`, timeoutMs: 120_000, intervalMs: 500 },
  );
  const isrBackMs = Date.now() - healedAt;
  let after: QuorumAnswer | undefined;
  let victimCaughtUp = false;
  for (let i = 0; i < 10 && !victimCaughtUp; i++) {
    after = await quorum([1, 2, 3]);
    victimCaughtUp =
      !!after?.ok &&
      (after.voters.find((v) => v.id === victim)?.lastCaughtUpTimestamp ?? 0) >= healedAt;
    if (!victimCaughtUp) await sleep(2_000);
  }

  // Every acknowledged record read back, once.
  const end = Number((await admin.fetchTopicOffsets(topic))[0]?.high ?? 0);
  await admin.disconnect();
  const seen = await countKeys(
    new kafkajs.Kafka(c.clientConfig('ledger', 'ledger')).consumer({
      groupId: group,
      sessionTimeout: 10_000,
    }),
    topic,
    end,
  );
  const { lost, duplicated } = lostAndDuplicated(acked, seen);
  expect(lost).toEqual([]);
  expect(duplicated).toEqual([]);
  expect(healedAt - at).toBeGreaterThanOrEqual(CUT_MS - 50);
  return {
    label,
    victim,
    topicLeader,
    controllerBefore,
    controllerDuring,
    controllerDuringId,
    controllerAfter: after?.ok ? after.leaderId : -1,
    firstAckMs: firstAck ? firstAck - at : 0,
    producers,
    loadingErrors,
    errors: squeeze(events),
    idFrom,
    acked,
    isrBackMs,
    victimCaughtUp,
  };
}

function summary(r: CaseResult): string {
  return (
    `case ${r.label}: cut node ${r.victim} (topic leader ${r.topicLeader}); controller before ${r.controllerBefore}, ` +
    `during ${r.controllerDuring}, after ${r.controllerAfter}; first ack of a new producer ` +
    `${r.firstAckMs ? `${(r.firstAckMs / 1000).toFixed(1)} s after the cut` : 'none during the cut'}, ` +
    `${r.producers} producers; ${r.loadingErrors} "coordinator is loading" errors; producer id from node ` +
    `${r.idFrom || '-'}; ISR back ` +
    `${r.isrBackMs} ms after the heal; ${loadavg()}\n  ` +
    (r.errors.length ? r.errors.join('\n  ') : '(no errors)')
  );
}

beforeAll(async () => {
  pc = await startPodKafkaCluster({
    stack: 'kpid',
    subnetBasePort: 51_000, // 198.18.51.0/24
    trustDomain: IDS.trustDomain,
    clients: { 'orders-api': IDS.ordersApi, ledger: IDS.ledger },
    properties: { 'offsets.topic.num.partitions': '3' },
  });
  console.info(`kafka cluster in pods ready in ${pc.cluster.startupMs} ms; ${loadavg()}`);
}, 600_000);

afterAll(async () => {
  await pc?.stop();
  console.info(
    `kafka-producer-id.extended.test.ts: ${Date.now() - fileStart} ms wall; ${loadavg()}`,
  );
});

describe('a new idempotent producer while one node of the KRaft cluster is cut off', () => {
  it('(A) the active controller cut: measured, and nothing acknowledged is lost', async () => {
    // The victim is the controller; the topic's leader one of the others.
    const r = await runCase('A', (ctl) => [ctl, ctl === 1 ? 2 : 1]);
    console.info(summary(r));
    expect(r.victim).toBe(r.controllerBefore);
    expect(r.victimCaughtUp).toBe(true);
    // Asserted after three consistent runs without a producer before the cut (docs/reliability.md):
    // a surviving node leads the quorum 10 s into the cut, yet the brokers answer "coordinator is
    // loading" to InitProducerId for more than 20 s after the cut (first ack 24.1-43.1 s, or none).
    expect([1, 2, 3].filter((i) => i !== r.victim)).toContain(r.controllerDuringId);
    expect(r.loadingErrors).toBeGreaterThan(0);
    if (r.firstAckMs) expect(r.firstAckMs).toBeGreaterThan(20_000);
  });

  it('(B) control, a node neither controller nor topic leader cut: the new producer gets an ack during the cut', async () => {
    const r = await runCase('B', (ctl) => {
      const [victim, leader] = [1, 2, 3].filter((i) => i !== ctl);
      return [victim ?? 0, leader ?? 0];
    });
    console.info(summary(r));
    expect(r.victim).not.toBe(r.controllerBefore);
    expect(r.firstAckMs).toBeGreaterThan(0);
    expect(r.firstAckMs).toBeLessThan(CUT_MS);
    expect(r.victimCaughtUp).toBe(true);
  });
});
