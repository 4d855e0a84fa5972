import { decodeOrderAccepted, type OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { GroupConsumer } from '@trellis/service-platform/consumer';
import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
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
export class KafkaIntake extends GroupConsumer {
  readonly name = 'queue';
  private readonly opts: KafkaIntakeOptions;
  private readonly writer: ChunkWriter;

  constructor(
    kafka: kafkajs.Kafka,
    writer: ChunkWriter,
    opts: KafkaIntakeOptions,
    log: FastifyBaseLogger,
  ) {
    super(
      kafka,
      {
        topic: opts.topic,
        groupId: opts.groupId,
        // The broker holds a fetch until a chunk's worth of bytes is there or batchWaitMs is over, so
        // a record waits at most batchWaitMs. The price: an idle writer fetches every batchWaitMs.
        // With 0, the broker answers as soon as anything is there (and holds an empty fetch 500 ms).
        fetch: {
          minBytes: opts.batchWaitMs > 0 ? opts.batchMax * MIN_RECORD_BYTES : 1,
          maxWaitTimeInMs: opts.batchWaitMs > 0 ? opts.batchWaitMs : 500,
        },
      },
      log,
    );
    this.opts = opts;
    this.writer = writer;
  }

  protected waitingFor(): string | undefined {
    return this.opts.ready() ? undefined : 'waiting for cassandra and kafka before consuming';
  }

  protected async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    for (let i = 0; i < batch.messages.length; i += this.opts.batchMax) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(i, i + this.opts.batchMax);
      const { records, headers, malformed } = decodeRecords(chunk);
      for (const { offset, error } of malformed) {
        // A poison record must not block its partition: logged with its position and skipped.
        this.log.error({ topic, partition, offset, error }, 'skipping malformed intake record');
        this.writer.stats.malformed++;
      }
      // Throws (store or Kafka down): nothing of this chunk is committed, kafkajs redelivers it.
      if (records.length > 0)
        await this.writer.write(records, { system: 'kafka', destination: topic, headers });
      const last = chunk[chunk.length - 1]?.offset;
      if (last === undefined) continue;
      // Exactly the records just written (and the malformed ones among them), nothing after.
      await this.commitThrough(topic, partition, last);
      resolveOffset(last);
      await heartbeat();
    }
  }
}

/** Decode a chunk's record values; the malformed ones come back with their offset and why. */
export function decodeRecords(
  messages: readonly Pick<KafkaMessage, 'offset' | 'value' | 'headers'>[],
): {
  records: OrderAccepted[];
  /** Each record's headers (its `traceparent`), same order as `records`. */
  headers: (KafkaMessage['headers'] | undefined)[];
  malformed: { offset: string; error: string }[];
} {
  const records: OrderAccepted[] = [];
  const headers: (KafkaMessage['headers'] | undefined)[] = [];
  const malformed: { offset: string; error: string }[] = [];
  for (const m of messages) {
    try {
      records.push(decodeOrderAccepted(m.value));
      headers.push(m.headers);
    } catch (err) {
      malformed.push({ offset: m.offset, error: (err as Error).message });
    }
  }
  return { records, headers, malformed };
}
