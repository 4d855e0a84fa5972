import { requestIdHeader } from '@trellis/contracts';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { encodeOrderCreated } from '@trellis/contracts/orders-v1';
import type { FastifyBaseLogger } from 'fastify';
import type { Message } from 'kafkajs';
import { chunkIds, planChunk, type ChunkPlan } from './chunk.ts';
import type { OrderRows } from './rows.ts';

/** Where `order.created` goes: the platform's Publisher (idempotent producer, acks = all). */
export interface EventSink {
  publish(message: Message): Promise<void>;
}

/** Counters since start (replays included), for logs and tests. */
export interface WriterStats {
  chunks: number;
  written: number;
  emitted: number;
  replays: number;
  duplicates: number;
  conflicts: number;
  malformed: number;
}

/**
 * One chunk, start to end: look up the chunk's ids, write the new rows, emit `order.created` for every
 * order stored with its record's fingerprint, and only then return, so the caller commits the intake
 * offsets (or deletes the SQS messages) after both. Any failure throws before the commit: the chunk
 * comes back and the same plan is made again (written rows are now "stored, same fingerprint").
 */
export class ChunkWriter {
  readonly stats: WriterStats = {
    chunks: 0,
    written: 0,
    emitted: 0,
    replays: 0,
    duplicates: 0,
    conflicts: 0,
    malformed: 0,
  };
  private readonly rows: OrderRows;
  private readonly sink: EventSink;
  private readonly log: FastifyBaseLogger;

  constructor(rows: OrderRows, sink: EventSink, log: FastifyBaseLogger) {
    this.rows = rows;
    this.sink = sink;
    this.log = log;
  }

  /** Write one chunk of well-formed records (in queue order). */
  async write(records: readonly OrderAccepted[]): Promise<ChunkPlan> {
    const existing = await this.rows.existing(chunkIds(records));
    const plan = planChunk(records, existing);
    for (const c of plan.conflicts) {
      // The first request with this id won; this one is not an order (orders-api answers 422 for it
      // when it sees the stored row first).
      this.log.warn(
        { ...c },
        'dropping conflicting order record: its id is taken by another request',
      );
    }
    await this.rows.insert(plan.write);
    await Promise.all(
      plan.emit.map((e) =>
        this.sink.publish({
          key: e.order.id,
          value: encodeOrderCreated(e),
          headers: { [requestIdHeader]: e.requestId },
        }),
      ),
    );
    // One line per order, with its request id and subject, so `./trellis audit --request-id` shows
    // the writer's part of a request (the chunk's own line below has only counts).
    for (const e of plan.emit)
      this.log.info(
        { orderId: e.order.id, requestId: e.requestId, subject: e.subject },
        'order stored',
      );
    const s = this.stats;
    s.chunks++;
    s.written += plan.write.length;
    s.emitted += plan.emit.length;
    s.replays += plan.replays;
    s.duplicates += plan.duplicates;
    s.conflicts += plan.conflicts.length;
    this.log.info(
      {
        records: records.length,
        written: plan.write.length,
        emitted: plan.emit.length,
        replays: plan.replays,
        duplicates: plan.duplicates,
        conflicts: plan.conflicts.length,
      },
      'wrote chunk',
    );
    return plan;
  }
}
