/**
 * GroupConsumer's stall watchdog, with stand-in kafkajs consumers (a real broker that stops answering
 * is the extended partition test's: consumer-partition.extended.test.ts). The events are kafkajs'
 * instrumentation events, emitted by the stand-in as a running consumer would.
 */
import type { EachBatchPayload } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { GroupConsumer } from '../src/consumer.ts';
import { handingOut, keptLog } from './support/kept-log.ts';

const EVENTS = {
  GROUP_JOIN: 'consumer.group_join',
  FETCH: 'consumer.fetch',
  FETCH_START: 'consumer.fetch_start',
  START_BATCH_PROCESS: 'consumer.start_batch_process',
  END_BATCH_PROCESS: 'consumer.end_batch_process',
  REBALANCING: 'consumer.rebalancing',
  CRASH: 'consumer.crash',
  DISCONNECT: 'consumer.disconnect',
  STOP: 'consumer.stop',
};

/** A stand-in consumer; `emit` plays kafkajs' instrumentation events. */
function standIn(partitions: number[] = [0], commit: () => Promise<void> = async () => undefined) {
  const handlers = new Map<string, ((e: unknown) => void)[]>();
  const state = { running: false, disconnected: false };
  const emit = (event: string, payload: unknown = {}): void => {
    for (const h of handlers.get(event) ?? []) h({ payload });
  };
  const consumer = {
    events: EVENTS,
    on: (event: string, fn: (e: unknown) => void) => {
      handlers.set(event, [...(handlers.get(event) ?? []), fn]);
      return () => undefined;
    },
    connect: async () => undefined,
    subscribe: async () => undefined,
    run: async () => {
      state.running = true;
      emit(EVENTS.GROUP_JOIN, { groupId: 'g', memberAssignment: { t: partitions } });
    },
    disconnect: async () => {
      state.disconnected = true;
    },
    commitOffsets: commit,
  };
  return { consumer, state, emit };
}

class Probe extends GroupConsumer {
  readonly name = 'kafka';
  protected waitingFor(): string | undefined {
    return undefined;
  }
  protected async handleBatch(_p: EachBatchPayload): Promise<void> {}
  /** What a subclass's handler does after handling offset 41 of partition 0. */
  commitHandled(): Promise<void> {
    return this.commitThrough('t', 0, '41');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const opts = { topic: 't', groupId: 'g', fetch: {}, stallMs: 300 };

describe('GroupConsumer: a consumer whose fetches stop being answered', () => {
  it('is replaced by a new consumer, which runs', async () => {
    const stuck = standIn();
    const fresh = standIn();
    const { log, lines } = keptLog();
    const c = new Probe(handingOut('consumer', stuck, fresh), opts, log);
    await c.connect();
    stuck.emit(EVENTS.FETCH_START, { nodeId: 1 });
    stuck.emit(EVENTS.FETCH, { nodeId: 1 }); // answered once...
    stuck.emit(EVENTS.FETCH_START, { nodeId: 2 });
    stuck.emit(EVENTS.FETCH, { nodeId: 2 });
    stuck.emit(EVENTS.FETCH_START, { nodeId: 1 }); // ... then never again: kafkajs times the request out
    await sleep(150);
    stuck.emit(EVENTS.FETCH_START, { nodeId: 1 }); // and asks the same node again
    stuck.emit(EVENTS.FETCH_START, { nodeId: 2 }); // while another node still answers
    stuck.emit(EVENTS.FETCH, { nodeId: 2 });
    const t0 = Date.now();
    while (!fresh.state.running && Date.now() - t0 < 5_000) await sleep(50);
    expect(fresh.state.running).toBe(true);
    expect(stuck.state.disconnected).toBe(true);
    expect(c.replaced()).toBe(1);
    expect(c.ready()).toBe(true);
    expect(lines.map((l) => l.msg)).toContain(
      'consumer stalled: a request unanswered; replacing it, with new connections',
    );
    expect(lines.find((l) => l.msg.startsWith('consumer stalled'))?.unanswered).toBe(
      'a fetch from node 1',
    );
    // The abandoned consumer's late events no longer count.
    stuck.emit(EVENTS.CRASH, { error: new Error('late'), restart: false });
    expect(c.alive()).toBe(true);
    await c.close();
  });

  it('is replaced when an offset commit is not answered, with no fetch pending (the coordinator cut off)', async () => {
    // The commit of the abandoned consumer never settles; the new consumer's commits are answered.
    const stuck = standIn([0], () => new Promise<void>(() => undefined));
    const fresh = standIn();
    const { log, lines } = keptLog();
    const c = new Probe(handingOut('consumer', stuck, fresh), opts, log);
    await c.connect();
    stuck.emit(EVENTS.FETCH_START, { nodeId: 1 });
    stuck.emit(EVENTS.FETCH, { nodeId: 1 }); // the batch was fetched...
    void c.commitHandled(); // ... handled, and its commit is never answered
    const t0 = Date.now();
    while (!fresh.state.running && Date.now() - t0 < 5_000) await sleep(50);
    expect(fresh.state.running).toBe(true);
    expect(stuck.state.disconnected).toBe(true);
    expect(c.replaced()).toBe(1);
    expect(lines.find((l) => l.msg.startsWith('consumer stalled'))?.unanswered).toBe(
      'an offset commit',
    );
    // The new consumer commits, and is kept: the abandoned commit, still pending, no longer counts.
    await c.commitHandled();
    await sleep(800);
    expect(c.replaced()).toBe(1);
    await c.close();
  });

  it('is kept while fetches and commits are answered, while a batch is being handled, across a rebalance, and when idle', async () => {
    const busy = standIn();
    const idle = standIn([]);
    const { log } = keptLog();
    // One stand-in each: a replacement would throw in handingOut, and crash the test.
    const answering = new Probe(handingOut('consumer', busy), opts, log);
    const idleMember = new Probe(handingOut('consumer', idle), opts, log);
    await answering.connect();
    await idleMember.connect();
    // Fetches answered within 100 ms for 1.5 s, each batch committed, then one long batch for 1.5 s
    // (no fetch meanwhile).
    for (let i = 0; i < 15; i++) {
      busy.emit(EVENTS.FETCH_START, { nodeId: 1 });
      await sleep(100);
      busy.emit(EVENTS.FETCH, { nodeId: 1 });
      await answering.commitHandled();
    }
    busy.emit(EVENTS.START_BATCH_PROCESS);
    await sleep(1_500);
    busy.emit(EVENTS.END_BATCH_PROCESS);
    // A fetch pending when the group rebalances is not waited on: the fetchers stop.
    busy.emit(EVENTS.FETCH_START, { nodeId: 1 });
    busy.emit(EVENTS.REBALANCING);
    await sleep(1_500);
    expect(answering.replaced()).toBe(0);
    expect(idleMember.replaced()).toBe(0);
    expect(busy.state.disconnected).toBe(false);
    await answering.close();
    await idleMember.close();
  });
});
