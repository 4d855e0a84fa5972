import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import type { OrderCreated } from '@trellis/contracts/orders-v1';
import { NotYetError, type Dependency } from '@trellis/service-platform/dependency';
import {
  SQS_MAX_BATCH,
  SqsOrderQueue,
  type MalformedRecord,
  type OrderBatch,
  type SqsOrderQueueOptions,
} from '@trellis/service-platform/queue';
import type { FastifyBaseLogger } from 'fastify';
import type { ChunkWriter } from './writer.ts';

/** What one receive returned, as the writer sees it. Hand it back to {@link IntakeQueue.ack}. */
export interface IntakeBatch {
  readonly records: readonly OrderAccepted[];
  /** Bodies that are not a valid record: never acked, so the redrive policy moves them to the DLQ. */
  readonly malformed: readonly MalformedRecord[];
}

/** The receiving side of the order queue, as the writer needs it. */
export interface IntakeQueue {
  receiveBatch(max: number, waitMs: number): Promise<IntakeBatch>;
  /** Delete the batch's well-formed records (after they were written and emitted). */
  ack(batch: IntakeBatch): Promise<void>;
  close(): void;
}

/**
 * Adapter from the platform's {@link SqsOrderQueue} to {@link IntakeQueue}. Until SqsOrderQueue
 * carries `order.accepted` records (issue 16, the api change), it decodes `order.created` bodies; such
 * a record becomes an `order.accepted` without a fingerprint. Once it carries `order.accepted`, the
 * conversion is the identity and this adapter only keeps the batch for `ack`.
 */
export class SqsIntakeQueue implements IntakeQueue {
  private readonly queue: SqsOrderQueue;
  private readonly received = new WeakMap<IntakeBatch, OrderBatch>();

  constructor(opts: SqsOrderQueueOptions) {
    this.queue = new SqsOrderQueue(opts);
  }

  async receiveBatch(max: number, waitMs: number): Promise<IntakeBatch> {
    const batch = await this.queue.receiveBatch(max, waitMs);
    const out: IntakeBatch = {
      records: batch.orders.map((o) => asAccepted(o.event)),
      malformed: batch.malformed,
    };
    this.received.set(out, batch);
    return out;
  }

  async ack(batch: IntakeBatch): Promise<void> {
    const original = this.received.get(batch);
    if (!original) throw new Error('sqs intake: ack of a batch this queue did not receive');
    await this.queue.ack(original);
  }

  close(): void {
    this.queue.close();
  }
}

/** An `order.accepted` record as is; an `order.created` one (today's SqsOrderQueue) without a fingerprint. */
export function asAccepted(e: OrderAccepted | OrderCreated): OrderAccepted {
  if (e.type === 'order.accepted') return e;
  return {
    type: 'order.accepted',
    version: 1,
    order: e.order,
    requestHash: null,
    subject: e.subject,
    ...(e.clientId !== undefined ? { clientId: e.clientId } : {}),
    ...(e.peer !== undefined ? { peer: e.peer } : {}),
    requestId: e.requestId,
  };
}

/** Options of {@link SqsIntake}. */
export interface SqsIntakeOptions {
  /** Most records per chunk; received 10 at a time (SQS's maximum). */
  batchMax: number;
  /** Once the first records are there, how long to keep receiving to fill the chunk. */
  batchWaitMs: number;
  /** Long poll while the queue is empty; bounds how long a shutdown waits for the loop. @default 2000 */
  idleWaitMs?: number;
  /** Polling starts only once this says the store and the event producer are usable. */
  ready: () => boolean;
}

/**
 * The SQS side of the order queue: a poll loop. Per chunk: receive (long poll while idle, then without
 * waiting until `batchMax` records or `batchWaitMs`), write, emit, and only then delete the received
 * messages. A failure leaves them on the queue: they come back after the visibility timeout.
 */
export class SqsIntake implements Dependency {
  readonly name = 'queue';
  private readonly queue: IntakeQueue;
  private readonly writer: ChunkWriter;
  private readonly opts: SqsIntakeOptions;
  private readonly log: FastifyBaseLogger;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private healthy = false;

  constructor(
    queue: IntakeQueue,
    writer: ChunkWriter,
    opts: SqsIntakeOptions,
    log: FastifyBaseLogger,
  ) {
    this.queue = queue;
    this.writer = writer;
    this.opts = opts;
    this.log = log;
  }

  async connect(): Promise<void> {
    if (this.loop) return;
    if (!this.opts.ready()) throw new NotYetError('waiting for cassandra and kafka before polling');
    // One receive up front, so a wrong URL or region fails the connect (and readiness) loudly.
    const first = await this.queue.receiveBatch(1, 0);
    this.healthy = true;
    this.loop = this.run(first);
  }

  ready(): boolean {
    return this.loop !== null && this.healthy && !this.stopped;
  }

  /** Stop polling after the chunk in hand (it is written and acked first), then release the client. */
  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.queue.close();
  }

  private async run(first: IntakeBatch): Promise<void> {
    let pending: IntakeBatch | null = first;
    let backoff = 250;
    while (!this.stopped) {
      try {
        const batches = await this.fill(pending);
        pending = null;
        await this.handle(batches);
        this.healthy = true;
        backoff = 250;
      } catch (err) {
        this.healthy = false;
        pending = null;
        this.log.error({ err: err as Error }, 'sqs chunk failed; its messages come back');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  /** Receive one chunk: wait for the first records, then top up without waiting. */
  private async fill(pending: IntakeBatch | null): Promise<IntakeBatch[]> {
    const max = this.opts.batchMax;
    const batches: IntakeBatch[] = [];
    let count = 0;
    const add = (b: IntakeBatch): void => {
      if (b.records.length + b.malformed.length === 0) return;
      batches.push(b);
      count += b.records.length + b.malformed.length;
    };
    if (pending) add(pending);
    if (count === 0) {
      add(
        await this.queue.receiveBatch(Math.min(SQS_MAX_BATCH, max), this.opts.idleWaitMs ?? 2_000),
      );
    }
    if (count === 0) return batches;
    const deadline = Date.now() + this.opts.batchWaitMs;
    while (count < max && Date.now() < deadline && !this.stopped) {
      const before = count;
      add(await this.queue.receiveBatch(Math.min(SQS_MAX_BATCH, max - count), 0));
      if (count === before) break;
    }
    return batches;
  }

  private async handle(batches: readonly IntakeBatch[]): Promise<void> {
    for (const b of batches) {
      for (const m of b.malformed) {
        this.log.error(
          { messageId: m.messageId, error: m.error },
          'leaving malformed sqs record for the dead-letter queue',
        );
        this.writer.stats.malformed++;
      }
    }
    const records = batches.flatMap((b) => b.records);
    if (records.length === 0) return;
    await this.writer.write(records);
    for (const b of batches) if (b.records.length > 0) await this.queue.ack(b);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
