/**
 * Reading the `orders.orders` table (`@trellis/contracts/orders-table`): orders-writer writes it and
 * reads back what it stored, orders-api reads it. Both map a row to an order the same way, here; the
 * DDL and the columns' meaning are the contract's.
 */
import type cassandra from 'cassandra-driver';
import { KEYSPACE } from '@trellis/contracts/orders-table';
import type { Order } from '@trellis/contracts/orders-v1';

/** The columns of an order row, in the order {@link storedOrder} and the writer's INSERT use. */
export const ORDER_COLUMNS = 'id, sku, quantity, customer_ref, subject, created_at, request_hash';

/** One order by id (a single-partition read); bind the id. */
export const SELECT_ORDER = `SELECT ${ORDER_COLUMNS} FROM ${KEYSPACE}.orders WHERE id = ?`;

/** An order row: the order and the fingerprint of the request it was accepted with. */
export interface StoredOrder {
  order: Order;
  /** The request fingerprint (`Idempotency-Key`); null for an order accepted without a key. */
  requestHash: string | null;
}

/** The order in a row read with {@link ORDER_COLUMNS}; `customerRef` only when the column is set. */
export function storedOrder(row: cassandra.types.Row): StoredOrder {
  const order: Order = {
    id: String(row.get('id')),
    sku: row.get('sku') as string,
    quantity: row.get('quantity') as number,
    subject: row.get('subject') as string,
    createdAt: (row.get('created_at') as Date).toISOString(),
  };
  const ref = row.get('customer_ref') as string | null;
  if (ref !== null) order.customerRef = ref;
  return { order, requestHash: (row.get('request_hash') as string | null) ?? null };
}
