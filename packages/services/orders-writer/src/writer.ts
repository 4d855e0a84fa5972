import { requestIdHeader } from '@trellis/contracts';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { encodeOrderCreated } from '@trellis/contracts/orders-v1';
import type { FastifyBaseLogger } from 'fastify';
import type { Message } from 'kafkajs';
import {
  ATTR,
  Tracing,
  failSpan,
  processSpan,
  traceIdIn,
  type Context,
  type HeaderCarrier,
  type MessagingSystem,
  type Span,
} from '@trellis/service-platform/tracing';
import { chunkIds, planChunk, type ChunkPlan } from './chunk.ts';
import type { OrderRows, ParentOf } from './rows.ts';

/**
 * Where `order.created` goes: the platform's Publisher (idempotent producer, acks = all). Given a
 * `parent`, it publishes in a `send` span under it and puts the span's `traceparent` on the record.
 */
export interface EventSink {
  publish(message: Message, parent?: Context): Promise<void>;
}

/** Where a chunk came from, and each record's trace context headers (same order as the records). */
export interface ChunkOrigin {
  system: MessagingSystem;
  /** The intake topic or queue name. */
  destination: string;
  /** Per record: its headers (Kafka) or message attributes (SQS) with `traceparent`, if any. */
  headers: readonly (HeaderCarrier | undefined)[];
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
  private readonly tracing: Tracing;

  constructor(
    rows: OrderRows,
    sink: EventSink,
    log: FastifyBaseLogger,
    tracing: Tracing = Tracing.off,
  ) {
    this.rows = rows;
    this.sink = sink;
    this.log = log;
    this.tracing = tracing;
  }

  /**
   * Write one chunk of well-formed records (in queue order). With tracing on and an `origin`, each
   * record gets a `process` span continuing its `traceparent`, and its order's read, row write and
   * `orders.v1` send are spans under it: one trace per order across the queue.
   */
  async write(records: readonly OrderAccepted[], origin?: ChunkOrigin): Promise<ChunkPlan> {
    if (!this.tracing.enabled || origin === undefined) return this.writeChunk(records, undefined);
    const spans = records.map((r, i) => this.recordSpan(r, i, records.length, origin));
    // The first record of an id carries that order's work (later ones are duplicates or conflicts).
    const byId = new Map<string, Context>();
    records.forEach((r, i) => {
      const s = spans[i];
      if (s && !byId.has(r.order.id)) byId.set(r.order.id, s.ctx);
    });
    try {
      const plan = await this.writeChunk(records, (id) => byId.get(id), spans);
      plan.outcomes.forEach((o, i) => spans[i]?.span.setAttribute('trellis.order.outcome', o));
      return plan;
    } catch (err) {
      for (const s of spans) failSpan(s.span, err);
      throw err;
    } finally {
      for (const s of spans) s.span.end();
    }
  }

  private recordSpan(
    r: OrderAccepted,
    i: number,
    count: number,
    origin: ChunkOrigin,
  ): { span: Span; ctx: Context } {
    const parent = this.tracing.extract(origin.headers[i]);
    const { name, options } = processSpan(origin.system, origin.destination, {
      [ATTR.orderId]: r.order.id,
      [ATTR.requestId]: r.requestId,
      [ATTR.messagingBatchCount]: count,
    });
    const span = this.tracing.startSpan(name, options, parent);
    return { span, ctx: this.tracing.contextWith(parent, span) };
  }

  private async writeChunk(
    records: readonly OrderAccepted[],
    parentOf: ParentOf | undefined,
    spans?: readonly { ctx: Context }[],
  ): Promise<ChunkPlan> {
    const existing = await this.rows.existing(chunkIds(records), parentOf);
    const plan = planChunk(records, existing);
    plan.conflicts.forEach((c) => {
      // The first request with this id won; this one is not an order (orders-api answers 422 for it
      // when it sees the stored row first).
      const i = records.findIndex((r) => r.requestId === c.requestId && r.order.id === c.orderId);
      const ctx = spans?.[i]?.ctx;
      const traceId = ctx === undefined ? undefined : traceIdIn(ctx);
      this.log.warn(
        { ...c, ...(traceId !== undefined ? { traceId } : {}) },
        'dropping conflicting order record: its id is taken by another request',
      );
    });
    await this.rows.insert(plan.write, undefined, parentOf);
    await Promise.all(
      plan.emit.map((e) =>
        this.sink.publish(
          {
            key: e.order.id,
            value: encodeOrderCreated(e),
            headers: { [requestIdHeader]: e.requestId },
          },
          parentOf?.(e.order.id),
        ),
      ),
    );
    // One line per order, with its request id and subject, so `./trellis audit --request-id` shows
    // the writer's part of a request (the chunk's own line below has only counts).
    // With tracing on, also its trace id (the edge's), to join the line to the trace.
    for (const e of plan.emit) {
      const ctx = parentOf?.(e.order.id);
      const traceId = ctx === undefined ? undefined : traceIdIn(ctx);
      this.log.info(
        {
          orderId: e.order.id,
          requestId: e.requestId,
          subject: e.subject,
          ...(traceId !== undefined ? { traceId } : {}),
        },
        'order stored',
      );
    }
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
