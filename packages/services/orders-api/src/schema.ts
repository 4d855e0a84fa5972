import type cassandra from 'cassandra-driver';

/** The keyspace orders-api writes to. The platform creates it (replication from the policy model). */
export const KEYSPACE = 'orders';

/**
 * Table DDL for keyspace `orders`. Only tables: the keyspace, its replication and the grants come
 * from the platform. One partition per order: the service only ever reads an order by its id.
 */
export const ddl: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.orders (
    id uuid PRIMARY KEY,
    sku text,
    quantity int,
    customer_ref text,
    subject text,
    created_at timestamp
  )`,
];

/** Apply {@link ddl}. Idempotent; fails clearly when the keyspace does not exist yet. */
export async function migrate(
  client: cassandra.Client,
  statements: readonly string[] = ddl,
): Promise<void> {
  for (const cql of statements) await client.execute(cql);
}
