import type cassandra from 'cassandra-driver';
import {
  ORDER_COLUMNS,
  SELECT_ORDER,
  storedOrder,
  type StoredOrder,
} from '@trellis/service-platform/orders-table';
import {
  Tracing,
  cassandraSpan,
  failSpan,
  ROOT_CONTEXT,
  type Context,
  type Span,
} from '@trellis/service-platform/tracing';
import { KEYSPACE } from './schema.ts';

/** The trace context of the record that brought an order id, when tracing. */
export type ParentOf = (orderId: string) => Context | undefined;

export type { StoredOrder };

const SELECT_SPAN = cassandraSpan('SELECT', KEYSPACE, 'orders');
const INSERT_SPAN = cassandraSpan('INSERT', KEYSPACE, 'orders');
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
  private readonly tracing: Tracing;

  /** With tracing on, each read and each row's write is a span under its record's (`parentOf`). */
  constructor(client: cassandra.Client, tracing: Tracing = Tracing.off) {
    this.client = client;
    this.tracing = tracing;
  }

  /** The stored rows among `ids` (single-partition reads, at most {@link CONCURRENCY} at a time). */
  async existing(ids: readonly string[], parentOf?: ParentOf): Promise<Map<string, StoredOrder>> {
    const found = new Map<string, StoredOrder>();
    const read = async (id: string): Promise<void> => {
      const row = (await this.client.execute(SELECT_ORDER, [id])).first();
      if (row) found.set(id, storedOrder(row));
    };
    await forEachBounded(ids, CONCURRENCY, async (id) => {
      const parent = parentOf?.(id);
      if (parent === undefined || !this.tracing.enabled) return read(id);
      return this.tracing.inSpan(SELECT_SPAN.name, SELECT_SPAN.options, parent, () => read(id));
    });
    return found;
  }

  /**
   * Write new rows with plain INSERTs (no lightweight transaction): the writer owns every id it
   * writes (one partition of the intake topic, or one SQS message group, per order id), and it read
   * that the id was absent, so there is no concurrent create to arbitrate. A replay rewrites the
   * same values.
   */
  async insert(
    rows: readonly StoredOrder[],
    mode: WriteMode = WRITE_MODE,
    parentOf?: ParentOf,
  ): Promise<void> {
    if (rows.length === 0) return;
    const traced = this.tracing.enabled && parentOf !== undefined;
    if (mode === 'batch') {
      const batches = batchesOf(rows);
      // Unlogged: no batchlog write; each row is its own partition, so atomicity across them would
      // buy nothing here (a failed chunk is redelivered and rewritten whole).
      await forEachBounded(batches, BATCH_CONCURRENCY, async (batch) => {
        // One CQL batch, one span per row in it, each in its order's trace (a span has one parent,
        // and every order's trace must show its write); they share the batch's start and end.
        const spans = traced ? this.rowSpans(batch, parentOf) : [];
        try {
          await this.client.batch(
            batch.map((r) => ({ query: INSERT, params: values(r) })),
            { prepare: true, logged: false },
          );
        } catch (err) {
          for (const s of spans) failSpan(s, err);
          throw err;
        } finally {
          for (const s of spans) s.end();
        }
      });
      return;
    }
    await forEachBounded(rows, CONCURRENCY, async (r) => {
      const parent = traced ? parentOf(r.order.id) : undefined;
      if (parent === undefined) {
        await this.client.execute(INSERT, values(r));
        return;
      }
      await this.tracing.inSpan(INSERT_SPAN.name, INSERT_SPAN.options, parent, async () => {
        await this.client.execute(INSERT, values(r));
      });
    });
  }

  private rowSpans(batch: readonly StoredOrder[], parentOf: ParentOf): Span[] {
    const { name, options } = cassandraSpan('BATCH INSERT', KEYSPACE, 'orders', batch.length);
    return batch.map((r) =>
      this.tracing.startSpan(name, options, parentOf(r.order.id) ?? ROOT_CONTEXT),
    );
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
