/**
 * The `orders.intake.v1` contract: what orders-api puts on the order queue and the batch writer
 * (orders-writer) drains into Cassandra. One record per accepted `POST /orders`. Locally the queue is
 * this Kafka topic (record key = order id, so every record of one order lands in one partition, in
 * order); in AWS it is the stack's SQS FIFO queue (the same JSON as the message body). The writer emits
 * `orders.v1` `order.created` only after the order is in Cassandra (ADR 0022).
 */
import type { Order } from './orders-v1.ts';

/** The Kafka topic. Its ACLs (producer orders-api, consumer group orders-writer) come from the policy model. */
export const ORDERS_INTAKE_TOPIC = 'orders.intake.v1';

/** The record value. */
export interface OrderAccepted {
  type: 'order.accepted';
  version: 1;
  order: Order;
  /**
   * Fingerprint of the request (SHA-256 hex of its fields, orders-api's `requestHash`) when it carried
   * an `Idempotency-Key`; null otherwise. Of two records with one order id, the first written wins, and
   * a later one with another fingerprint is a conflict the writer drops.
   */
  requestHash: string | null;
  /** The user's subject from the validated token (also in `order.subject`). */
  subject: string;
  /** OAuth client of the token, when known. */
  clientId?: string;
  /** SPIFFE ID of the workload that called orders-api, when known. */
  peer?: string;
  /** The request id that accepted the order, for tracing across services. */
  requestId: string;
}

/** Serialise a record value. */
export function encodeOrderAccepted(e: OrderAccepted): Buffer {
  return Buffer.from(JSON.stringify(e));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Parse and check a record value; throws an Error naming the bad field. */
export function decodeOrderAccepted(value: Buffer | null): OrderAccepted {
  if (!value) throw new Error('record has no value');
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch {
    throw new Error('record value is not JSON');
  }
  const e = raw as Partial<OrderAccepted> | null;
  if (!e || typeof e !== 'object') throw new Error('record value is not an object');
  if (e.type !== 'order.accepted')
    throw new Error(`record.type is ${JSON.stringify(e.type)}, want "order.accepted"`);
  if (e.version !== 1) throw new Error(`record.version is ${JSON.stringify(e.version)}, want 1`);
  const o = e.order;
  if (!o || typeof o !== 'object') throw new Error('record.order is missing');
  if (typeof o.id !== 'string' || !UUID.test(o.id))
    throw new Error('record.order.id is not a uuid');
  if (typeof o.sku !== 'string' || o.sku === '') throw new Error('record.order.sku is missing');
  if (!Number.isInteger(o.quantity)) throw new Error('record.order.quantity is not an integer');
  if (typeof o.subject !== 'string' || o.subject === '')
    throw new Error('record.order.subject is missing');
  if (typeof o.createdAt !== 'string' || Number.isNaN(Date.parse(o.createdAt)))
    throw new Error('record.order.createdAt is not a timestamp');
  if (
    e.requestHash !== null &&
    (typeof e.requestHash !== 'string' || !SHA256_HEX.test(e.requestHash))
  )
    throw new Error('record.requestHash is neither null nor a SHA-256 hex digest');
  if (typeof e.subject !== 'string' || e.subject === '')
    throw new Error('record.subject is missing');
  if (typeof e.requestId !== 'string') throw new Error('record.requestId is missing');
  return e as OrderAccepted;
}
