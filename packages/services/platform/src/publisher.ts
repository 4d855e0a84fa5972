import type { FastifyBaseLogger } from 'fastify';
import kafkajs from 'kafkajs';
import type { Message, Producer } from 'kafkajs';
import { cappedBackoff, disconnectAbandoned, type Dependency } from './dependency.ts';
import { ATTR, Tracing, sendSpan, type Context } from './tracing.ts';

const { Partitioners } = kafkajs;

/** The publish did not complete in time, or the queue is full; the caller should answer 503. */
export class PublishError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'PublishError';
  }
}

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  topic: string;
  /** How long a caller waits for the broker's ack. The record may still be sent later. @default 5000 */
  timeoutMs?: number;
  /** Queued records beyond which publish fails at once (Kafka down under load). @default 10000 */
  maxQueued?: number;
  /** A PRODUCER span per record given a parent context. @default Tracing.off */
  tracing?: Tracing;
  /**
   * A produce request still unanswered after this long means the producer's connections lead
   * nowhere (a broker cut off from the network answers nothing, and kafkajs keeps asking it): the
   * producer is replaced by a new one, with new connections. At least `timeoutMs`, so every caller of
   * the stalled request has had its answer. @default 3 × timeoutMs
   */
  stallMs?: number;
}

/** Records per produce request; keeps a request well under the broker's message.max.bytes. */
const MAX_BATCH = 500;

interface Pending {
  message: Message;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * An idempotent Kafka producer (acks = all) with one request in flight at a time. Records that
 * arrive while a request is in flight go out together in the next one, so under load it batches and
 * when idle it adds no delay. One request at a time also keeps kafkajs's idempotent sequence numbers
 * in order, which concurrent `send` calls have been known to break.
 *
 * A request that stalls (no answer within `stallMs`) is abandoned with its producer: a new producer,
 * with connections of its own, takes over the queue. kafkajs keeps the TCP connections it has, and a
 * partition leader cut off from the network answers nothing, so the old producer can wait on it far
 * longer than the cluster takes to elect a new leader (ADR 0027, "A network partition"). The
 * abandoned producer is disconnected; records of its last request may still be written, as its
 * callers were told.
 */
export class Publisher implements Dependency {
  readonly name = 'kafka';
  /** The topic every record goes to. */
  readonly topic: string;
  private readonly kafka: kafkajs.Kafka;
  private producer: Producer;
  private readonly tracing: Tracing;
  private readonly timeoutMs: number;
  private readonly stallMs: number;
  private readonly maxQueued: number;
  private readonly log: FastifyBaseLogger;
  private queue: Pending[] = [];
  private inFlight: Promise<void> | null = null;
  private connected = false;
  private closing = false;
  /** Producers replaced after a stalled request, since start. */
  private replacedCount = 0;

  constructor(kafka: kafkajs.Kafka, opts: PublisherOptions, log: FastifyBaseLogger) {
    this.topic = opts.topic;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.stallMs = opts.stallMs ?? 3 * this.timeoutMs;
    if (this.stallMs < this.timeoutMs) {
      throw new Error(
        `Publisher: stallMs (${this.stallMs}) must be at least timeoutMs (${this.timeoutMs}), ` +
          'so that every caller of a stalled request has had its answer before it is abandoned',
      );
    }
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.tracing = opts.tracing ?? Tracing.off;
    this.log = log;
    this.kafka = kafka;
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    const producer = this.kafka.producer({
      // Idempotence requires acks = all and unbounded retries (what kafkajs defaults to for an
      // idempotent producer; set here because the client's short connect retries would override it).
      // The caller's wait is bounded by timeoutMs instead, and a stalled request by stallMs.
      idempotent: true,
      retry: { retries: Number.MAX_SAFE_INTEGER },
      maxInFlightRequests: 1,
      // Topics come from the policy model, with ACLs; never create one by accident.
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    // Only the current producer's events count: an abandoned one disconnects in the background.
    producer.on(producer.events.CONNECT, () => {
      if (producer === this.producer) this.connected = true;
    });
    producer.on(producer.events.DISCONNECT, () => {
      if (producer === this.producer) this.connected = false;
    });
    return producer;
  }

  async connect(): Promise<void> {
    await this.producer.connect();
  }

  ready(): boolean {
    return this.connected;
  }

  /** How many times a stalled producer has been replaced since start. */
  replaced(): number {
    return this.replacedCount;
  }

  /**
   * Publish one record; resolves once every in-sync replica has it (acks = all). Rejects with a
   * {@link PublishError} after `timeoutMs`: a record still waiting for its produce request is then
   * withdrawn and never sent, so that answer means "not published"; one already handed to Kafka may
   * still be written (the producer keeps retrying it), which the caller cannot know.
   *
   * With tracing on and a `parent` context, the publish is a `send <topic>` PRODUCER span under it,
   * and the record carries that span's `traceparent` header, so the consumer continues the trace.
   */
  publish(message: Message, parent?: Context): Promise<void> {
    if (!this.tracing.enabled || parent === undefined) return this.enqueue(message);
    const { name, options } = sendSpan('kafka', this.topic, {
      ...(typeof message.key === 'string' ? { [ATTR.kafkaKey]: message.key } : {}),
    });
    return this.tracing.inSpan(name, options, parent, (_span, ctx) =>
      this.enqueue({ ...message, headers: { ...message.headers, ...this.tracing.inject(ctx) } }),
    );
  }

  private enqueue(message: Message): Promise<void> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new PublishError(`publish queue full (${this.maxQueued} records)`));
    }
    let timer: NodeJS.Timeout | undefined;
    const acked = new Promise<void>((resolve, reject) => {
      const pending: Pending = { message, resolve, reject };
      this.queue.push(pending);
      timer = setTimeout(() => {
        const i = this.queue.indexOf(pending);
        if (i >= 0) this.queue.splice(i, 1);
        const fate = i >= 0 ? 'withdrawn unsent' : 'in flight, it may still be written';
        reject(new PublishError(`no ack from Kafka within ${this.timeoutMs} ms (record ${fate})`));
      }, this.timeoutMs);
    });
    this.pump();
    return acked.finally(() => clearTimeout(timer));
  }

  /** Wait (bounded) for queued records, then disconnect the producer. */
  async close(): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + this.timeoutMs;
    while ((this.inFlight || this.queue.length > 0) && Date.now() < deadline) {
      await Promise.race([this.inFlight, sleep(Math.min(50, deadline - Date.now()))]);
    }
    for (const p of this.queue.splice(0)) p.reject(new PublishError('shutting down'));
    await this.producer.disconnect();
  }

  private pump(): void {
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    this.inFlight = orStalled(this.sendBatch(this.producer, batch), this.stallMs)
      .then(async (outcome) => {
        if (outcome === 'stalled') await this.replace(batch.length);
      })
      .finally(() => {
        this.inFlight = null;
        this.pump();
      });
  }

  /**
   * Abandon the current producer for a new one, and connect it before the next request. A new
   * producer that does not connect within `stallMs` (its first broker may be the cut-off one, and
   * kafkajs waits on it as on any) is abandoned in turn, until one connects or the publisher closes.
   * Callers waiting meanwhile time out on their own, their records withdrawn unsent.
   */
  private async replace(records: number): Promise<void> {
    this.log.warn(
      { topic: this.topic, stallMs: this.stallMs, records, replaced: this.replacedCount + 1 },
      'produce request stalled; replacing the producer, with new connections',
    );
    for (const wait of cappedBackoff()) {
      if (this.closing) return;
      const old = this.producer;
      this.replacedCount++;
      this.producer = this.newProducer();
      this.connected = false;
      disconnectAbandoned(old, 'producer', this.log);
      const outcome = await orStalled(
        this.producer.connect().then(
          () => 'connected' as const,
          (err: unknown) => err as Error,
        ),
        this.stallMs,
      );
      if (outcome === 'connected') {
        this.log.info(
          { topic: this.topic, replaced: this.replacedCount },
          'new producer connected',
        );
        return;
      }
      this.log.warn(
        {
          topic: this.topic,
          replaced: this.replacedCount,
          ...(outcome === 'stalled' ? { stallMs: this.stallMs } : { err: outcome }),
        },
        'new producer did not connect; replacing it too',
      );
      await sleep(wait);
    }
  }

  private async sendBatch(producer: Producer, batch: Pending[]): Promise<void> {
    try {
      await producer.send({
        topic: this.topic,
        acks: -1,
        messages: batch.map((p) => p.message),
      });
      for (const p of batch) p.resolve();
    } catch (err) {
      this.log.error(
        { err: err as Error, topic: this.topic, records: batch.length },
        'publish failed',
      );
      for (const p of batch) p.reject(new PublishError('publish to Kafka failed', err));
    }
  }
}

/** What `work` settles to, or 'stalled' if it has not settled within `ms` (it is not cancelled). */
async function orStalled<T>(work: Promise<T>, ms: number): Promise<T | 'stalled'> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<'stalled'>((resolve) => {
    timer = setTimeout(() => resolve('stalled'), ms);
  });
  try {
    return await Promise.race([work, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
