import type cassandra from 'cassandra-driver';
import { KEYSPACE, ordersDdl } from '@trellis/contracts/orders-table';

export { KEYSPACE };

/** The `orders.orders` table DDL (a contract with orders-api, `@trellis/contracts/orders-table`). */
export const ddl: readonly string[] = ordersDdl;

/** Apply {@link ddl}. Idempotent; fails clearly when the keyspace does not exist yet. */
export async function migrate(
  client: cassandra.Client,
  statements: readonly string[] = ddl,
): Promise<void> {
  for (const cql of statements) await client.execute(cql);
}
