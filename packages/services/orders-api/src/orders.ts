import cassandra from 'cassandra-driver';
import type { Order } from '@trellis/contracts/orders-v1';
import { KEYSPACE } from './schema.ts';

const COLUMNS = 'id, sku, quantity, customer_ref, subject, created_at';
const INSERT = `INSERT INTO ${KEYSPACE}.orders (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`;
const CREATE = `INSERT INTO ${KEYSPACE}.orders (${COLUMNS}, request_hash, lease_until)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`;
const PUBLISHED = `UPDATE ${KEYSPACE}.orders SET published_at = ? WHERE id = ?`;
const SELECT = `SELECT ${COLUMNS}, request_hash, lease_until, published_at FROM ${KEYSPACE}.orders WHERE id = ?`;

/** An order row with the bookkeeping of an idempotent create (null for an order created without a key). */
export interface StoredOrder {
  order: Order;
  /** Fingerprint of the request that created it. */
  requestHash: string | null;
  /** Until when the creating request holds the order (epoch ms): a retry before then gets 409. */
  leaseUntil: number | null;
  /** When its `order.created` event was acknowledged by Kafka (epoch ms). */
  publishedAt: number | null;
}

/** The outcome of {@link OrderStore.create}: this request's row, or the one already there. */
export type CreateResult = { created: true } | { created: false; existing: StoredOrder };

/** Orders in Cassandra. Statements are prepared (the client sets `prepare: true` for every query). */
export class OrderStore {
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  /** Write an order with a fresh random id (a `POST` without `Idempotency-Key`): a plain write. */
  async insert(o: Order): Promise<void> {
    await this.client.execute(INSERT, values(o));
  }

  /**
   * Create an order unless its id exists: a lightweight transaction (Paxos), so of any number of
   * concurrent creates of one id, on any replica, exactly one is applied, and the others get the
   * row that won. LOCAL_SERIAL: linearizable within the datacenter; two regions racing on one key
   * still write the same id (ADR 0017), so they can never make two orders.
   */
  async create(o: Order, requestHash: string, leaseUntil: number): Promise<CreateResult> {
    const rs = await this.client.execute(
      CREATE,
      [...values(o), requestHash, new Date(leaseUntil)],
      {
        serialConsistency: cassandra.types.consistencies.localSerial,
      },
    );
    if (rs.wasApplied()) return { created: true };
    const row = rs.first();
    return { created: false, existing: stored(row) };
  }

  /** Record that the order's event was acknowledged, so later retries answer without producing. */
  async markPublished(id: string, at: number): Promise<void> {
    await this.client.execute(PUBLISHED, [new Date(at), id]);
  }

  /** The order, or null when there is none with this id. */
  async get(id: string): Promise<Order | null> {
    return (await this.getStored(id))?.order ?? null;
  }

  /** The order and its idempotency bookkeeping, or null. */
  async getStored(id: string): Promise<StoredOrder | null> {
    const row = (await this.client.execute(SELECT, [id])).first();
    return row ? stored(row) : null;
  }
}

function values(o: Order): unknown[] {
  return [o.id, o.sku, o.quantity, o.customerRef ?? null, o.subject, new Date(o.createdAt)];
}

function epoch(v: unknown): number | null {
  return v instanceof Date ? v.getTime() : null;
}

function stored(row: cassandra.types.Row): StoredOrder {
  const order: Order = {
    id: String(row.get('id')),
    sku: row.get('sku') as string,
    quantity: row.get('quantity') as number,
    subject: row.get('subject') as string,
    createdAt: (row.get('created_at') as Date).toISOString(),
  };
  const ref = row.get('customer_ref') as string | null;
  if (ref !== null) order.customerRef = ref;
  return {
    order,
    requestHash: (row.get('request_hash') as string | null) ?? null,
    leaseUntil: epoch(row.get('lease_until')),
    publishedAt: epoch(row.get('published_at')),
  };
}

/**
 * Whether an error means "Cassandra did not answer in time or at all" (timeouts, no host, an
 * unavailable replica set, Paxos contention), as opposed to a bug: the client should retry.
 */
export function storeUnavailable(err: unknown): boolean {
  const e = cassandra.errors;
  if (err instanceof e.NoHostAvailableError || err instanceof e.OperationTimedOutError) return true;
  if (!(err instanceof e.ResponseError)) return false;
  const c = cassandra.types.responseErrorCodes;
  return [c.unavailableException, c.writeTimeout, c.readTimeout, c.overloaded].includes(err.code);
}
