import { decodeOrderAccepted, type OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { NotYetError, type Dependency } from '@trellis/service-platform/dependency';
import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { ChunkWriter } from './writer.ts';

/** Options of {@link KafkaIntake}. */
export interface KafkaIntakeOptions {
  topic: string;
  /** Consumer group; its ACL comes from the policy model. */
  groupId: string;
  /** Most records per chunk (one Cassandra round of reads and writes, one commit). */
  batchMax: number;
  /** How long the broker may hold a fetch to fill a chunk (fetch max wait with a min size). */
  batchWaitMs: number;
  /** Consuming starts only once this says the store and the event producer are usable. */
  ready: () => boolean;
}

/**
 * Bytes a record of `orders.intake.v1` takes at least (key, JSON value, headers, batch overhead): a
 * fetch asks for `batchMax` of them, so under load the broker answers with a full chunk and when idle
 * after `batchWaitMs`.
 */
const MIN_RECORD_BYTES = 200;

/**
 * The Kafka side of the order queue: consumes `orders.intake.v1` in group `orders-writer`, in chunks of
 * at most `batchMax` records per partition, and commits a chunk's offsets by hand only after its rows
 * are written and its events acknowledged (autoCommit off). A crash anywhere before the commit
 * redelivers the chunk, which the writer turns into the same rows and the same events.
 */
export class KafkaIntake implements Dependency {
  readonly name = 'queue';
  private readonly consumer: Consumer;
  private readonly opts: KafkaIntakeOptions;
  private readonly writer: ChunkWriter;
  private readonly log: FastifyBaseLogger;
  private running = false;
  private joined = false;
  private crashed: Error | null = null;

  constructor(
    kafka: kafkajs.Kafka,
    writer: ChunkWriter,
    opts: KafkaIntakeOptions,
    log: FastifyBaseLogger,
  ) {
    this.opts = opts;
    this.writer = writer;
    this.log = log;
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: 15_000,
      heartbeatInterval: 3_000,
      // The broker holds a fetch until a chunk's worth of bytes is there or batchWaitMs is over, so
      // a record waits at most batchWaitMs. The price: an idle writer fetches every batchWaitMs.
      // With 0, the broker answers as soon as anything is there (and holds an empty fetch 500 ms).
      minBytes: opts.batchWaitMs > 0 ? opts.batchMax * MIN_RECORD_BYTES : 1,
      maxWaitTimeInMs: opts.batchWaitMs > 0 ? opts.batchWaitMs : 500,
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
    if (!this.opts.ready())
      throw new NotYetError('waiting for cassandra and kafka before consuming');
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.opts.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.running = true;
  }

  /** In the group (with partitions assigned, or waiting for some), and not crashed for good. */
  ready(): boolean {
    return this.joined && this.crashed === null;
  }

  /** False once the consumer crashed with an error kafkajs will not restart from. */
  alive(): boolean {
    return this.crashed === null;
  }

  /** Leave the group; kafkajs lets the chunk being written finish first. */
  async close(): Promise<void> {
    await this.consumer.disconnect();
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    for (let i = 0; i < batch.messages.length; i += this.opts.batchMax) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(i, i + this.opts.batchMax);
      const { records, malformed } = decodeRecords(chunk);
      for (const { offset, error } of malformed) {
        // A poison record must not block its partition: logged with its position and skipped.
        this.log.error({ topic, partition, offset, error }, 'skipping malformed intake record');
        this.writer.stats.malformed++;
      }
      // Throws (store or Kafka down): nothing of this chunk is committed, kafkajs redelivers it.
      if (records.length > 0) await this.writer.write(records);
      const last = chunk[chunk.length - 1]?.offset;
      if (last === undefined) continue;
      // Exactly the records just written (and the malformed ones among them), nothing after.
      await this.consumer.commitOffsets([
        { topic, partition, offset: (BigInt(last) + 1n).toString() },
      ]);
      resolveOffset(last);
      await heartbeat();
    }
  }
}

/** Decode a chunk's record values; the malformed ones come back with their offset and why. */
export function decodeRecords(messages: readonly Pick<KafkaMessage, 'offset' | 'value'>[]): {
  records: OrderAccepted[];
  malformed: { offset: string; error: string }[];
} {
  const records: OrderAccepted[] = [];
  const malformed: { offset: string; error: string }[] = [];
  for (const m of messages) {
    try {
      records.push(decodeOrderAccepted(m.value));
    } catch (err) {
      malformed.push({ offset: m.offset, error: (err as Error).message });
    }
  }
  return { records, malformed };
}
