import { decodeOrderCreated } from '@trellis/contracts/orders-v1';
import { NotYetError, type Dependency } from '@trellis/service-platform/dependency';
import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { EntryStore } from './entries.ts';

/** Options of {@link OrderConsumer}. */
export interface OrderConsumerOptions {
  topic: string;
  /** Consumer group; its ACL comes from the policy model. */
  groupId: string;
  /** The consumer starts only once this says the store is usable. */
  storeReady: () => boolean;
}

/**
 * Consumes `orders.v1` in a consumer group and projects each event into `ledger.order_entries`. Offsets
 * are committed by hand, only after the Cassandra writes succeeded: a crash between the two replays
 * the events, which the idempotent projection absorbs (at-least-once delivery, exactly-once effect).
 * One commit covers a whole fetched batch (one record when idle, many under load), so the broker
 * sees one OffsetCommit per batch instead of one per order.
 */
export class OrderConsumer implements Dependency {
  readonly name = 'kafka';
  private readonly consumer: Consumer;
  private readonly opts: OrderConsumerOptions;
  private readonly store: EntryStore;
  private readonly log: FastifyBaseLogger;
  private running = false;
  private joined = false;
  private crashed: Error | null = null;
  /** Events projected since start (replays included); for logs and tests. */
  projected = 0;
  /** Malformed records skipped since start (replays included). */
  skipped = 0;

  constructor(
    kafka: kafkajs.Kafka,
    store: EntryStore,
    opts: OrderConsumerOptions,
    log: FastifyBaseLogger,
  ) {
    this.opts = opts;
    this.store = store;
    this.log = log;
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: 15_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 500,
    });
    const ev = this.consumer.events;
    this.consumer.on(ev.GROUP_JOIN, (e) => {
      this.joined = true;
      this.log.info(
        { groupId: e.payload.groupId, assignment: e.payload.memberAssignment },
        'joined consumer group',
      );
    });
    this.consumer.on(ev.CRASH, (e) => {
      this.joined = false;
      if (!e.payload.restart) this.crashed = e.payload.error;
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(ev.DISCONNECT, () => {
      this.joined = false;
    });
    this.consumer.on(ev.STOP, () => {
      this.joined = false;
    });
  }

  async connect(): Promise<void> {
    if (this.running) return;
    if (!this.opts.storeReady()) throw new NotYetError('waiting for cassandra before consuming');
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.opts.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.running = true;
  }

  /** In the group with partitions assigned (or waiting for some), and not crashed for good. */
  ready(): boolean {
    return this.joined && this.crashed === null;
  }

  /** False once the consumer crashed with an error kafkajs will not restart from. */
  alive(): boolean {
    return this.crashed === null;
  }

  /** Leave the group; kafkajs lets the message being handled finish first. */
  async close(): Promise<void> {
    await this.consumer.disconnect();
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    let next: string | null = null;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        // Throwing here (store down) ends the batch; kafkajs redelivers from the first record
        // that was not written.
        await this.handle(topic, partition, message);
        resolveOffset(message.offset);
        next = (BigInt(message.offset) + 1n).toString();
        await heartbeat();
      }
    } finally {
      // Commit exactly the records whose projection is written, also when a later one failed.
      if (next !== null) await this.consumer.commitOffsets([{ topic, partition, offset: next }]);
    }
  }

  private async handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    const at = { topic, partition, offset: message.offset };
    let event;
    try {
      event = decodeOrderCreated(message.value);
    } catch (err) {
      // A poison record must not block its partition; it is logged with its position and skipped.
      this.log.error({ err: err as Error, ...at }, 'skipping malformed orders event');
      this.skipped++;
      return;
    }
    await this.store.project(event, { partition, offset: message.offset });
    this.projected++;
    this.log.info(
      { ...at, orderId: event.order.id, subject: event.subject, requestId: event.requestId },
      'projected order',
    );
  }
}
