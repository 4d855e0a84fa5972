import cassandra from 'cassandra-driver';
import type { OrderCreated } from '@trellis/contracts/orders-v1';
import { KEYSPACE } from './schema.ts';

const UPSERT = `INSERT INTO ${KEYSPACE}.order_entries
  (order_id, sku, quantity, subject, ordered_at, request_id, source_partition, source_offset)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
const SELECT = `SELECT order_id, sku, quantity, subject, ordered_at, request_id, source_partition, source_offset
  FROM ${KEYSPACE}.order_entries WHERE order_id = ?`;

/** A ledger entry: the projection of one `order.created` event. */
export interface Entry {
  orderId: string;
  sku: string;
  quantity: number;
  subject: string;
  orderedAt: string;
  requestId: string;
  /** Where the event was read from: the last record that (re)wrote this entry. */
  source: { partition: number; offset: string };
}

/** The `ledger.order_entries` table. Prepared statements (the client sets `prepare: true`). */
export class EntryStore {
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  /** Project one event. A plain upsert keyed by order id: replaying it is a no-op in effect. */
  async project(e: OrderCreated, source: { partition: number; offset: string }): Promise<void> {
    const o = e.order;
    await this.client.execute(UPSERT, [
      o.id,
      o.sku,
      o.quantity,
      e.subject,
      new Date(o.createdAt),
      e.requestId,
      source.partition,
      cassandra.types.Long.fromString(source.offset),
    ]);
  }

  /** The entry for an order, or null. */
  async get(orderId: string): Promise<Entry | null> {
    const row = (await this.client.execute(SELECT, [orderId])).first();
    if (!row) return null;
    return {
      orderId: String(row.get('order_id')),
      sku: row.get('sku') as string,
      quantity: row.get('quantity') as number,
      subject: row.get('subject') as string,
      orderedAt: (row.get('ordered_at') as Date).toISOString(),
      requestId: row.get('request_id') as string,
      source: {
        partition: row.get('source_partition') as number,
        offset: String(row.get('source_offset')),
      },
    };
  }
}
