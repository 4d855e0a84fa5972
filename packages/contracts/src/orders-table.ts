/**
 * The `orders.orders` table: orders-writer writes it (the batch writer, ADR 0022) and orders-api reads
 * it, so its shape is a contract between the two, like the topics. Pure strings; the services apply the
 * DDL with their own driver.
 */

/** The keyspace of orders. The platform creates it (replication from the policy model). */
export const KEYSPACE = 'orders';

/** The columns `POST` with an `Idempotency-Key` adds to an order's row (ADR 0017, ADR 0022). */
const IDEMPOTENCY_COLUMNS = 'request_hash text, lease_until timestamp, published_at timestamp';

/**
 * Table DDL for keyspace `orders`. Only tables: the keyspace, its replication and the grants come
 * from the platform. One partition per order: the services only ever read an order by its id.
 * `request_hash` is set only for orders created with an `Idempotency-Key`; `lease_until` and
 * `published_at` were ADR 0017's write path and are no longer written (kept so an older table keeps
 * its shape). The `ALTER` adds them to a table created before they existed (a no-op otherwise), so
 * whoever applies this needs `ALTER` as well as `CREATE` on the keyspace.
 */
export const ordersDdl: readonly string[] = [
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
