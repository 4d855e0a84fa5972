import { NotYetError, type Dependency } from '@trellis/service-platform/dependency';
import { SQS_MAX_BATCH, type OrderBatch, type OrderQueue } from '@trellis/service-platform/queue';
import type { FastifyBaseLogger } from 'fastify';
import type { ChunkWriter } from './writer.ts';

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
  /** The queue's name (`<name>.fifo`), for the records' spans. */
  destination: string;
}

/**
 * The SQS side of the order queue: a poll loop. Per chunk: receive (long poll while idle, then without
 * waiting until `batchMax` records or `batchWaitMs`), write, emit, and only then delete the received
 * messages. A failure leaves them on the queue: they come back after the visibility timeout.
 */
export class SqsIntake implements Dependency {
  readonly name = 'queue';
  private readonly queue: OrderQueue & { close(): void };
  private readonly writer: ChunkWriter;
  private readonly opts: SqsIntakeOptions;
  private readonly log: FastifyBaseLogger;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private healthy = false;

  constructor(
    queue: OrderQueue & { close(): void },
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

  private async run(first: OrderBatch): Promise<void> {
    let pending: OrderBatch | null = first;
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
  private async fill(pending: OrderBatch | null): Promise<OrderBatch[]> {
    const max = this.opts.batchMax;
    const batches: OrderBatch[] = [];
    let count = 0;
    const add = (b: OrderBatch): void => {
      if (b.orders.length + b.malformed.length === 0) return;
      batches.push(b);
      count += b.orders.length + b.malformed.length;
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

  private async handle(batches: readonly OrderBatch[]): Promise<void> {
    for (const b of batches) {
      for (const m of b.malformed) {
        this.log.error(
          { messageId: m.messageId, error: m.error },
          'leaving malformed sqs record for the dead-letter queue',
        );
        this.writer.stats.malformed++;
      }
    }
    const records = batches.flatMap((b) => b.orders.map((o) => o.event));
    if (records.length === 0) return;
    await this.writer.write(records, {
      system: 'aws_sqs',
      destination: this.opts.destination,
      headers: batches.flatMap((b) => b.orders.map((o) => o.trace)),
    });
    for (const b of batches) if (b.orders.length > 0) await this.queue.ack(b);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
