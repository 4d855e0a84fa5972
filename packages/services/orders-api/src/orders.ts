import type cassandra from 'cassandra-driver';
import type { Order } from '@trellis/contracts/orders-v1';
import { KEYSPACE } from './schema.ts';

const INSERT = `INSERT INTO ${KEYSPACE}.orders (id, sku, quantity, customer_ref, subject, created_at)
  VALUES (?, ?, ?, ?, ?, ?)`;
const SELECT = `SELECT id, sku, quantity, customer_ref, subject, created_at FROM ${KEYSPACE}.orders WHERE id = ?`;

/** Orders in Cassandra. Statements are prepared (the client sets `prepare: true` for every query). */
export class OrderStore {
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  async insert(o: Order): Promise<void> {
    await this.client.execute(INSERT, [
      o.id,
      o.sku,
      o.quantity,
      o.customerRef ?? null,
      o.subject,
      new Date(o.createdAt),
    ]);
  }

  /** The order, or null when there is none with this id. */
  async get(id: string): Promise<Order | null> {
    const rs = await this.client.execute(SELECT, [id]);
    const row = rs.first();
    if (!row) return null;
    const order: Order = {
      id: String(row.get('id')),
      sku: row.get('sku') as string,
      quantity: row.get('quantity') as number,
      subject: row.get('subject') as string,
      createdAt: (row.get('created_at') as Date).toISOString(),
    };
    const ref = row.get('customer_ref') as string | null;
    if (ref !== null) order.customerRef = ref;
    return order;
  }
}
