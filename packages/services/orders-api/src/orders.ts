import cassandra from 'cassandra-driver';
import type { Order } from '@trellis/contracts/orders-v1';
import {
  SELECT_ORDER,
  storedOrder,
  type StoredOrder,
} from '@trellis/service-platform/orders-table';

export type { StoredOrder };

/**
 * Orders in Cassandra, read-only: orders-writer writes them (ADR 0022), orders-api only reads, at the
 * client's consistency (`CASSANDRA_CONSISTENCY`, default LOCAL_QUORUM: with the writer's LOCAL_QUORUM
 * writes, once one read saw an order every later one does). Statements are prepared (the client sets
 * `prepare: true` for every query).
 */
export class OrderStore {
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  /** The order, or null when there is none with this id (yet). */
  async get(id: string): Promise<Order | null> {
    return (await this.getStored(id))?.order ?? null;
  }

  /** The order and the fingerprint it was created with, or null. */
  async getStored(id: string): Promise<StoredOrder | null> {
    const row = (await this.client.execute(SELECT_ORDER, [id])).first();
    return row ? storedOrder(row) : null;
  }
}

/**
 * Whether an error means "Cassandra did not answer in time or at all" (timeouts, no host, an
 * unavailable replica set), as opposed to a bug: the client should retry.
 */
export function storeUnavailable(err: unknown): boolean {
  const e = cassandra.errors;
  if (err instanceof e.NoHostAvailableError || err instanceof e.OperationTimedOutError) return true;
  if (!(err instanceof e.ResponseError)) return false;
  const c = cassandra.types.responseErrorCodes;
  return [c.unavailableException, c.readTimeout, c.overloaded].includes(err.code);
}
