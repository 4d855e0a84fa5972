/**
 * The order queue (ADR 0022): orders-api puts each accepted order on it as one `order.accepted` record
 * (`@trellis/contracts/orders-intake-v1`), the batch writer (orders-writer) drains it into Cassandra.
 *
 * - {@link OrderPublisher} is orders-api's side: one `publish(record)` over both queues, the Kafka
 *   intake topic ({@link KafkaOrderPublisher}, the idempotent `Publisher`, record key = order id) or
 *   the stack's SQS FIFO queue ({@link SqsOrderPublisher}, deduplication id = order id).
 * - {@link OrderQueue} is the writer's side on SQS ({@link SqsOrderQueue}: receive a batch, ack it
 *   after the write); on Kafka the writer consumes the topic with a consumer group instead.
 *
 * The SQS message body is the same JSON as the Kafka record value, so one decoder serves both sides.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { requestIdHeader } from '@trellis/contracts';
import {
  decodeOrderAccepted,
  encodeOrderAccepted,
  type OrderAccepted,
} from '@trellis/contracts/orders-intake-v1';
import type { Message } from 'kafkajs';
import type { Dependency } from './dependency.ts';
import { PublishError, type Publisher } from './publisher.ts';
import { ATTR, Tracing, sendSpan, type Context, type TraceHeaders } from './tracing.ts';

/** A queue operation failed; the message names the operation and the queue. */
export class QueueError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'QueueError';
  }
}

/** One record received from the queue. */
export interface QueuedOrder {
  readonly event: OrderAccepted;
  /** The id it was published with (the order's idempotent id). */
  readonly dedupId: string;
  /** How many times it has been received, this time included (1 on first delivery). */
  readonly receiveCount: number;
  /** The W3C trace context it was sent with (`traceparent`, `tracestate` message attributes). */
  readonly trace?: TraceHeaders;
}

/** A record whose body is not a valid `order.accepted` record; never acked, so it is not lost. */
export interface MalformedRecord {
  readonly messageId: string;
  readonly error: string;
}

/** What one {@link OrderQueue.receiveBatch} returned; hand it back to {@link OrderQueue.ack}. */
export interface OrderBatch {
  readonly orders: readonly QueuedOrder[];
  readonly malformed: readonly MalformedRecord[];
}

/**
 * A queue of orders with at-least-once delivery: a received batch stays invisible to other receivers
 * for the queue's visibility timeout, and comes back unless it is acked. Ack only after the write.
 */
export interface OrderQueue {
  /**
   * Put one order on the queue; resolves once the queue has stored it. A retry with the same `dedupId`
   * is not a second record. `trace` (`traceparent`, `tracestate`) travels with it.
   */
  publish(event: OrderAccepted, dedupId: string, trace?: TraceHeaders): Promise<void>;
  /** Up to `max` records, waiting up to `waitMs` for the first one (long polling); may be empty. */
  receiveBatch(max: number, waitMs: number): Promise<OrderBatch>;
  /** Delete the batch's well-formed records from the queue (after they were written). */
  ack(batch: OrderBatch): Promise<void>;
}

/** Options of {@link SqsOrderQueue}. */
export interface SqsOrderQueueOptions {
  /** The queue URL, e.g. `https://sqs.eu-west-1.amazonaws.com/<account>/orders.fifo`. A FIFO queue. */
  queueUrl: string;
  /** The AWS region. */
  region: string;
  /**
   * Another SQS endpoint (an SQS-compatible server such as ElasticMQ); omit in AWS, where the SDK
   * derives it from the region.
   */
  endpoint?: string;
  /** Static credentials (for ElasticMQ, which checks none); omit in AWS to use the default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bound on one publish or ack, retries included. @default 5000 */
  timeoutMs?: number;
  /** Attempts of one request (the SDK's standard retry). @default 3 */
  maxAttempts?: number;
}

const defaults = { timeoutMs: 5_000, maxAttempts: 3 } as const;

/** SQS's largest receive (`MaxNumberOfMessages`) and longest long poll (`WaitTimeSeconds`). */
export const SQS_MAX_BATCH = 10;
export const SQS_MAX_WAIT_MS = 20_000;

/** The message attributes that carry the trace context (W3C names; SQS allows up to 10 per message). */
const TRACE_ATTRIBUTES = ['traceparent', 'tracestate'] as const;

/** SQS's rule for `MessageDeduplicationId`: 1-128 of `a-z A-Z 0-9` and punctuation. */
const DEDUP_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The SQS side of {@link OrderQueue}, on a FIFO queue. Each order is sent with
 * `MessageDeduplicationId` = its idempotent id, so a retried publish within SQS's deduplication
 * interval (5 minutes) is accepted but not delivered twice; `MessageGroupId` = the order id, so orders
 * are independent (no order waits behind another's redelivery). ADR 0021.
 */
export class SqsOrderQueue implements OrderQueue {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly timeoutMs: number;
  /** For errors: the queue URL, and the endpoint when it is not AWS's. */
  private readonly where: string;
  /** The queue's name (the URL's last segment, `<name>.fifo`). */
  readonly name: string;

  constructor(opts: SqsOrderQueueOptions) {
    this.queueUrl = checkQueueUrl(opts.queueUrl);
    this.name =
      new URL(this.queueUrl).pathname
        .split('/')
        .filter((p) => p !== '')
        .at(-1) ?? '';
    if (opts.endpoint !== undefined) checkHttpUrl('endpoint', opts.endpoint);
    if (!/^[a-z0-9-]+$/.test(opts.region))
      throw new QueueError(`sqs queue: region ${JSON.stringify(opts.region)} is not a region name`);
    this.timeoutMs = opts.timeoutMs ?? defaults.timeoutMs;
    this.where = opts.endpoint ? `${this.queueUrl} (endpoint ${opts.endpoint})` : this.queueUrl;
    this.client = new SQSClient({
      region: opts.region,
      maxAttempts: opts.maxAttempts ?? defaults.maxAttempts,
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
    });
  }

  async publish(event: OrderAccepted, dedupId: string, trace?: TraceHeaders): Promise<void> {
    if (!DEDUP_ID.test(dedupId))
      throw new QueueError(
        `sqs publish: dedupId ${JSON.stringify(dedupId)} must be 1-128 printable ASCII characters`,
      );
    await this.send('SendMessage', this.timeoutMs, (signal) =>
      this.client.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: encodeOrderAccepted(event).toString('utf8'),
          MessageGroupId: event.order.id,
          MessageDeduplicationId: dedupId,
          ...(trace && Object.keys(trace).length > 0
            ? {
                MessageAttributes: Object.fromEntries(
                  Object.entries(trace).map(([k, v]) => [
                    k,
                    { DataType: 'String', StringValue: v },
                  ]),
                ),
              }
            : {}),
        }),
        { abortSignal: signal },
      ),
    );
  }

  async receiveBatch(max: number, waitMs: number): Promise<OrderBatch> {
    if (!Number.isInteger(max) || max < 1 || max > SQS_MAX_BATCH)
      throw new QueueError(`sqs receive: max ${max} must be an integer from 1 to ${SQS_MAX_BATCH}`);
    if (!Number.isFinite(waitMs) || waitMs < 0 || waitMs > SQS_MAX_WAIT_MS)
      throw new QueueError(`sqs receive: waitMs ${waitMs} must be from 0 to ${SQS_MAX_WAIT_MS}`);
    // SQS long-polls in whole seconds.
    const waitSeconds = Math.ceil(waitMs / 1000);
    const out = await this.send('ReceiveMessage', waitSeconds * 1000 + this.timeoutMs, (signal) =>
      this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['MessageDeduplicationId', 'ApproximateReceiveCount'],
          MessageAttributeNames: [...TRACE_ATTRIBUTES],
        }),
        { abortSignal: signal },
      ),
    );
    const orders: SqsQueuedOrder[] = [];
    const malformed: MalformedRecord[] = [];
    for (const m of out.Messages ?? []) {
      const messageId = m.MessageId ?? '(no id)';
      try {
        if (!m.ReceiptHandle) throw new Error('no receipt handle');
        const event = decodeOrderAccepted(Buffer.from(m.Body ?? '', 'utf8'));
        const trace: TraceHeaders = {};
        for (const name of TRACE_ATTRIBUTES) {
          const v = m.MessageAttributes?.[name]?.StringValue;
          if (v !== undefined) trace[name] = v;
        }
        orders.push({
          ...(Object.keys(trace).length > 0 ? { trace } : {}),
          event,
          dedupId: m.Attributes?.MessageDeduplicationId ?? '',
          receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
          receiptHandle: m.ReceiptHandle,
        });
      } catch (err) {
        malformed.push({ messageId, error: (err as Error).message });
      }
    }
    return { orders, malformed };
  }

  async ack(batch: OrderBatch): Promise<void> {
    const handles = batch.orders.map((o) => receiptHandleOf(o));
    if (handles.length === 0) return;
    for (let i = 0; i < handles.length; i += SQS_MAX_BATCH) {
      const chunk = handles.slice(i, i + SQS_MAX_BATCH);
      const out = await this.send('DeleteMessageBatch', this.timeoutMs, (signal) =>
        this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map((h, j) => ({ Id: String(i + j), ReceiptHandle: h })),
          }),
          { abortSignal: signal },
        ),
      );
      const failed = out.Failed ?? [];
      if (failed.length > 0) {
        const what = failed.map((f) => `#${f.Id} ${f.Code ?? ''} ${f.Message ?? ''}`.trim());
        throw new QueueError(
          `sqs ack on ${this.where}: ${failed.length} of ${chunk.length} not deleted (${what.join('; ')})`,
        );
      }
    }
  }

  /** Release the HTTP connections. */
  close(): void {
    this.client.destroy();
  }

  private async send<T>(
    op: string,
    timeoutMs: number,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await call(signal);
    } catch (err) {
      const e = err as Error;
      const code = err instanceof SQSServiceException ? `${err.name}: ` : '';
      // The SDK rejects an aborted request with its own AbortError ("Request aborted"): say why.
      const why = signal.aborted ? `no answer within ${timeoutMs} ms` : e.message;
      throw new QueueError(`sqs ${op} on ${this.where} failed: ${code}${why}`, err);
    }
  }
}

/** A received record with the handle that deletes it (kept off the public type). */
interface SqsQueuedOrder extends QueuedOrder {
  readonly receiptHandle: string;
}

function receiptHandleOf(o: QueuedOrder): string {
  const h = (o as Partial<SqsQueuedOrder>).receiptHandle;
  if (typeof h !== 'string')
    throw new QueueError('sqs ack: a record of the batch was not received from an SQS queue');
  return h;
}

function checkHttpUrl(field: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new QueueError(`sqs queue: ${field} ${JSON.stringify(value)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new QueueError(`sqs queue: ${field} ${JSON.stringify(value)} must be http(s)`);
  return u;
}

/** The queue URL must be `<scheme>://<host>/<account>/<name>.fifo`. */
function checkQueueUrl(value: string): string {
  const u = checkHttpUrl('queueUrl', value);
  const parts = u.pathname.split('/').filter((p) => p !== '');
  const name = parts.at(-1) ?? '';
  if (parts.length !== 2 || !/^[A-Za-z0-9_-]{1,75}\.fifo$/.test(name))
    throw new QueueError(
      `sqs queue: queueUrl ${JSON.stringify(value)} must end in /<account>/<name>.fifo (a FIFO queue)`,
    );
  return value;
}

/**
 * orders-api's side of the order queue: put one accepted order on it. Resolves once the queue has
 * stored the record (Kafka: every in-sync replica, acks = all; SQS: `SendMessage` answered); rejects
 * with a {@link PublishError} when it did not within the publish timeout. A publish retried for the same
 * order (same id) is the same Kafka key or the same SQS deduplication id, so the writer stores it once.
 * Also a {@link Dependency}: its `name` (`kafka` or `sqs`) is the readiness check's.
 */
export interface OrderPublisher extends Dependency {
  /**
   * Put `record` on the queue. With tracing on and a `parent` context, a `send <queue>` PRODUCER span
   * under it, whose `traceparent` rides along (Kafka header, SQS message attribute).
   */
  publish(record: OrderAccepted, parent?: Context): Promise<void>;
}

/**
 * The Kafka record of an accepted order: key = order id (all records of one order in one partition,
 * in order), value = the JSON record, header `x-request-id`.
 */
export function intakeMessage(record: OrderAccepted): Message {
  return {
    key: record.order.id,
    value: encodeOrderAccepted(record),
    headers: { [requestIdHeader]: record.requestId },
  };
}

/** {@link OrderPublisher} on the Kafka intake topic, through the idempotent {@link Publisher}. */
export class KafkaOrderPublisher implements OrderPublisher {
  readonly name = 'kafka';
  private readonly publisher: Publisher;

  /** @param publisher on the intake topic (`orders.intake.v1`). */
  constructor(publisher: Publisher) {
    this.publisher = publisher;
  }

  connect(): Promise<void> {
    return this.publisher.connect();
  }

  ready(): boolean {
    return this.publisher.ready();
  }

  publish(record: OrderAccepted, parent?: Context): Promise<void> {
    return this.publisher.publish(intakeMessage(record), parent);
  }

  close(): Promise<void> {
    return this.publisher.close();
  }
}

/**
 * {@link OrderPublisher} on the SQS FIFO queue: `MessageDeduplicationId` = order id (ADR 0021). SQS is
 * a request/response HTTPS API with no connection to hold, and orders-api's role may only
 * `SendMessage`, so there is nothing to probe: it is ready once built, and a failing queue shows as a
 * 503 per request (give the queue's `timeoutMs` the publish timeout).
 */
export class SqsOrderPublisher implements OrderPublisher {
  readonly name = 'sqs';
  private readonly queue: SqsOrderQueue;
  private readonly tracing: Tracing;
  private closed = false;

  constructor(queue: SqsOrderQueue, tracing: Tracing = Tracing.off) {
    this.queue = queue;
    this.tracing = tracing;
  }

  async connect(): Promise<void> {}

  ready(): boolean {
    return !this.closed;
  }

  async publish(record: OrderAccepted, parent?: Context): Promise<void> {
    if (!this.tracing.enabled || parent === undefined) return this.send(record, undefined);
    const { name, options } = sendSpan('aws_sqs', this.queue.name, {
      [ATTR.orderId]: record.order.id,
    });
    return this.tracing.inSpan(name, options, parent, (_span, ctx) =>
      this.send(record, this.tracing.inject(ctx)),
    );
  }

  private async send(record: OrderAccepted, trace: TraceHeaders | undefined): Promise<void> {
    try {
      await this.queue.publish(record, record.order.id, trace);
    } catch (err) {
      if (err instanceof QueueError) throw new PublishError(err.message, err);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.close();
  }
}
