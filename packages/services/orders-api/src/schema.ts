import type cassandra from 'cassandra-driver';

/** The keyspace orders-api writes to. The platform creates it (replication from the policy model). */
export const KEYSPACE = 'orders';

/** The columns `POST` with an `Idempotency-Key` adds to an order's row (ADR 0017). */
const IDEMPOTENCY_COLUMNS = 'request_hash text, lease_until timestamp, published_at timestamp';

/**
 * Table DDL for keyspace `orders`. Only tables: the keyspace, its replication and the grants come
 * from the platform. One partition per order: the service only ever reads an order by its id.
 * `request_hash`, `lease_until` and `published_at` are set only for orders created with an
 * `Idempotency-Key`; the `ALTER` adds them to a table created before they existed (a no-op
 * otherwise), so whoever applies this needs `ALTER` as well as `CREATE` on the keyspace.
 */
export const ddl: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.orders (
    id uuid PRIMARY KEY,
    sku text,
    quantity int,
    customer_ref text,
    subject text,
    created_at timestamp,
    ${IDEMPOTENCY_COLUMNS}
  )`,
  // Several columns need the parentheses (Cassandra 5.0's grammar; its docs' BNF omits them).
  `ALTER TABLE ${KEYSPACE}.orders ADD IF NOT EXISTS (${IDEMPOTENCY_COLUMNS})`,
];

/** Apply {@link ddl}. Idempotent; fails clearly when the keyspace does not exist yet. */
export async function migrate(
  client: cassandra.Client,
  statements: readonly string[] = ddl,
): Promise<void> {
  for (const cql of statements) await client.execute(cql);
}
