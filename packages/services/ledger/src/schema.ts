/** The keyspace ledger writes to. The platform creates it (replication from the policy model). */
export const KEYSPACE = 'ledger';

/**
 * Table DDL for keyspace `ledger` (`order_entries`, not `entries`: ENTRIES is a CQL keyword). One row per order, keyed by order id: projecting an event is an
 * upsert of values taken only from the event and its position, so a replay rewrites the same row
 * with the same values and nothing is counted twice.
 */
export const ddl: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.order_entries (
    order_id uuid PRIMARY KEY,
    sku text,
    quantity int,
    subject text,
    ordered_at timestamp,
    request_id text,
    source_partition int,
    source_offset bigint
  )`,
];
