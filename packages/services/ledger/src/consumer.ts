import { decodeOrderCreated } from '@trellis/contracts/orders-v1';
import { GroupConsumer } from '@trellis/service-platform/consumer';
import {
  ATTR,
  cassandraSpan,
  processSpan,
  traceIdIn,
  type Context,
  type Tracing,
} from '@trellis/service-platform/tracing';
import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { EntryStore } from './entries.ts';
import { KEYSPACE } from './schema.ts';

const UPSERT_SPAN = cassandraSpan('INSERT', KEYSPACE, 'order_entries');

/** Options of {@link OrderConsumer}. */
export interface OrderConsumerOptions {
  topic: string;
  /** Consumer group; its ACL comes from the policy model. */
  groupId: string;
  /** The consumer starts only once this says the store is usable. */
  storeReady: () => boolean;
  /** Per record: a `process orders.v1` span continuing its `traceparent`, and the upsert's span. */
  tracing?: Tracing;
}

/**
 * Consumes `orders.v1` in a consumer group and projects each event into `ledger.order_entries`. Offsets
 * are committed by hand, only after the Cassandra writes succeeded: a crash between the two replays
 * the events, which the idempotent projection absorbs (at-least-once delivery, exactly-once effect).
 * One commit covers a whole fetched batch (one record when idle, many under load), so the broker
 * sees one OffsetCommit per batch instead of one per order.
 */
export class OrderConsumer extends GroupConsumer {
  readonly name = 'kafka';
  private readonly opts: OrderConsumerOptions;
  private readonly store: EntryStore;
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
    super(
      kafka,
      {
        topic: opts.topic,
        groupId: opts.groupId,
        fetch: { maxWaitTimeInMs: 500 },
        ...(opts.tracing ? { tracing: opts.tracing } : {}),
      },
      log,
    );
    this.opts = opts;
    this.store = store;
  }

  protected waitingFor(): string | undefined {
    return this.opts.storeReady() ? undefined : 'waiting for cassandra before consuming';
  }

  protected async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    let last: string | null = null;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        // Throwing here (store down) ends the batch; kafkajs redelivers from the first record
        // that was not written.
        await this.handle(topic, partition, message);
        resolveOffset(message.offset);
        last = message.offset;
        await heartbeat();
      }
    } finally {
      // Commit exactly the records whose projection is written, also when a later one failed.
      if (last !== null) await this.commitThrough(topic, partition, last);
    }
  }

  private async handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    if (!this.tracing.enabled) return this.project(topic, partition, message, undefined);
    // The writer's `send orders.v1` span is the parent: one trace from the edge to this write.
    const { name, options } = processSpan('kafka', topic, {
      [ATTR.messagingConsumerGroup]: this.groupId,
      [ATTR.messagingPartition]: String(partition),
      [ATTR.kafkaOffset]: Number(message.offset),
      ...(message.key ? { [ATTR.kafkaKey]: message.key.toString() } : {}),
    });
    return this.tracing.inSpan(name, options, this.tracing.extract(message.headers), (_span, ctx) =>
      this.project(topic, partition, message, ctx),
    );
  }

  private async project(
    topic: string,
    partition: number,
    message: KafkaMessage,
    ctx: Context | undefined,
  ): Promise<void> {
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
    const source = { partition, offset: message.offset };
    if (ctx === undefined) await this.store.project(event, source);
    else
      await this.tracing.inSpan(UPSERT_SPAN.name, UPSERT_SPAN.options, ctx, () =>
        this.store.project(event, source),
      );
    this.projected++;
    const traceId = ctx === undefined ? undefined : traceIdIn(ctx);
    this.log.info(
      {
        ...at,
        orderId: event.order.id,
        subject: event.subject,
        requestId: event.requestId,
        ...(traceId !== undefined ? { traceId } : {}),
      },
      'projected order',
    );
  }
}
