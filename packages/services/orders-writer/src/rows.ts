import type cassandra from 'cassandra-driver';
import {
  ORDER_COLUMNS,
  SELECT_ORDER,
  storedOrder,
  type StoredOrder,
} from '@trellis/service-platform/orders-table';
import { KEYSPACE } from './schema.ts';

export type { StoredOrder };

const INSERT = `INSERT INTO ${KEYSPACE}.orders (${ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`;

/**
 * How a chunk's new rows are written: `concurrent` single-partition INSERTs (bounded), or
 * `UNLOGGED BATCH`es (one per chunk unless its rows pass {@link BATCH_MAX_BYTES}). The writer uses {@link WRITE_MODE}; the other is kept for the bench
 * (bench/write-cost.ts) that chose it.
 */
export type WriteMode = 'concurrent' | 'batch';

/**
 * Chosen by Cassandra CPU per order in bench/write-cost.ts (2026-12-07, one node: UNLOGGED BATCH
 * 0.60 ms per order, concurrent INSERTs 0.75, one LWT per order 1.72; ADR 0022).
 */
export const WRITE_MODE: WriteMode = 'batch';

/** Requests in flight per chunk (reads and inserts): enough to fill a node, bounded to spare it. */
export const CONCURRENCY = 32;

/** Batches in flight per chunk. */
const BATCH_CONCURRENCY = 4;

/**
 * Largest UNLOGGED BATCH the writer sends, by its estimated size. Cassandra refuses a batch over
 * `batch_size_fail_threshold` (50 KiB by default): a chunk whose rows would exceed this goes out as
 * several batches. A typical order row is ~200 bytes, so the default chunk of 100 is one batch (what
 * the bench measured); the largest possible (sku 64, customerRef 128 characters, a long subject) ~1 KiB.
 */
export const BATCH_MAX_BYTES = 40 * 1024;

/** Split rows into batches of at most `maxBytes` by {@link rowBytes}, keeping their order. */
export function batchesOf(
  rows: readonly StoredOrder[],
  maxBytes = BATCH_MAX_BYTES,
): StoredOrder[][] {
  const out: StoredOrder[][] = [];
  let current: StoredOrder[] = [];
  let size = 0;
  for (const r of rows) {
    const n = rowBytes(r);
    if (current.length > 0 && size + n > maxBytes) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(r);
    size += n;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * An upper estimate of a row's size in a batch: its values (UTF-8 text, 16-byte uuid, 8-byte
 * timestamp, 4-byte int) plus 16 bytes per cell for Cassandra's cell overhead.
 */
export function rowBytes(r: StoredOrder): number {
  const o = r.order;
  const text = (v: string | null | undefined): number => (v ? Buffer.byteLength(v, 'utf8') : 0);
  return (
    16 + text(o.sku) + 4 + text(o.customerRef) + text(o.subject) + 8 + text(r.requestHash) + 7 * 16
  );
}

/** The `orders.orders` table as the writer sees it. Statements are prepared (`prepare: true`). */
export class OrderRows {
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  /** The stored rows among `ids` (single-partition reads, at most {@link CONCURRENCY} at a time). */
  async existing(ids: readonly string[]): Promise<Map<string, StoredOrder>> {
    const found = new Map<string, StoredOrder>();
    await forEachBounded(ids, CONCURRENCY, async (id) => {
      const row = (await this.client.execute(SELECT_ORDER, [id])).first();
      if (row) found.set(id, storedOrder(row));
    });
    return found;
  }

  /**
   * Write new rows with plain INSERTs (no lightweight transaction): the writer owns every id it
   * writes (one partition of the intake topic, or one SQS message group, per order id), and it read
   * that the id was absent, so there is no concurrent create to arbitrate. A replay rewrites the
   * same values.
   */
  async insert(rows: readonly StoredOrder[], mode: WriteMode = WRITE_MODE): Promise<void> {
    if (rows.length === 0) return;
    if (mode === 'batch') {
      const batches = batchesOf(rows);
      // Unlogged: no batchlog write; each row is its own partition, so atomicity across them would
      // buy nothing here (a failed chunk is redelivered and rewritten whole).
      await forEachBounded(batches, BATCH_CONCURRENCY, async (batch) => {
        await this.client.batch(
          batch.map((r) => ({ query: INSERT, params: values(r) })),
          { prepare: true, logged: false },
        );
      });
      return;
    }
    await forEachBounded(rows, CONCURRENCY, async (r) => {
      await this.client.execute(INSERT, values(r));
    });
  }
}

function values(r: StoredOrder): unknown[] {
  const o = r.order;
  return [
    o.id,
    o.sku,
    o.quantity,
    o.customerRef ?? null,
    o.subject,
    new Date(o.createdAt),
    r.requestHash,
  ];
}

/** Run `fn` over `items` with at most `limit` calls pending; rejects with the first failure. */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
