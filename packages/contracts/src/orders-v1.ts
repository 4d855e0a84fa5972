/**
 * The `orders.v1` contract: what orders-api publishes and ledger consumes. JSON value, record key =
 * order id (so every event of one order lands in one partition, in order).
 */

/** The Kafka topic. Its ACLs (producer orders-api, consumer group ledger) come from the policy model. */
export const ORDERS_TOPIC = 'orders.v1';

/** An order as stored and returned by the API. */
export interface Order {
  id: string;
  sku: string;
  quantity: number;
  customerRef?: string;
  /** `sub` of the user (or agent) whose validated token placed the order. */
  subject: string;
  /** ISO 8601. */
  createdAt: string;
}

/** The event value. */
export interface OrderCreated {
  type: 'order.created';
  version: 1;
  order: Order;
  /** The user's subject from the validated token (also in `order.subject`; kept top-level for consumers). */
  subject: string;
  /** OAuth client of the token (an agent's client id, for instance), when known. */
  clientId?: string;
  /** SPIFFE ID of the workload that called orders-api, when known. */
  peer?: string;
  /** The request id that created the order, for tracing across services. */
  requestId: string;
}

/** Serialise an event value. */
export function encodeOrderCreated(e: OrderCreated): Buffer {
  return Buffer.from(JSON.stringify(e));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parse and check an event value; throws an Error naming the bad field. */
export function decodeOrderCreated(value: Buffer | null): OrderCreated {
  if (!value) throw new Error('event has no value');
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch {
    throw new Error('event value is not JSON');
  }
  const e = raw as Partial<OrderCreated> | null;
  if (!e || typeof e !== 'object') throw new Error('event value is not an object');
  if (e.type !== 'order.created')
    throw new Error(`event.type is ${JSON.stringify(e.type)}, want "order.created"`);
  if (e.version !== 1) throw new Error(`event.version is ${JSON.stringify(e.version)}, want 1`);
  const o = e.order;
  if (!o || typeof o !== 'object') throw new Error('event.order is missing');
  if (typeof o.id !== 'string' || !UUID.test(o.id)) throw new Error('event.order.id is not a uuid');
  if (typeof o.sku !== 'string' || o.sku === '') throw new Error('event.order.sku is missing');
  if (!Number.isInteger(o.quantity)) throw new Error('event.order.quantity is not an integer');
  if (typeof o.subject !== 'string' || o.subject === '')
    throw new Error('event.order.subject is missing');
  if (typeof o.createdAt !== 'string' || Number.isNaN(Date.parse(o.createdAt))) {
    throw new Error('event.order.createdAt is not a timestamp');
  }
  if (typeof e.subject !== 'string' || e.subject === '')
    throw new Error('event.subject is missing');
  if (typeof e.requestId !== 'string') throw new Error('event.requestId is missing');
  return e as OrderCreated;
}
