import { KEYSPACE, ordersDdl } from '@trellis/contracts/orders-table';

export { KEYSPACE };

/** The `orders.orders` table DDL (a contract with orders-writer, `@trellis/contracts/orders-table`). */
export const ddl: readonly string[] = ordersDdl;
