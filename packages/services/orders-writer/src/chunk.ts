/**
 * What the writer does with one chunk of intake records, as a pure function of the records (in queue
 * order) and the rows already stored for their ids: which rows to write, which `order.created` events
 * to emit once they are written, and which records conflict. No I/O, so every rule is unit-tested.
 */
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import type { OrderCreated } from '@trellis/contracts/orders-v1';
import type { StoredOrder } from './rows.ts';

/** A record whose order id is taken by another request (another fingerprint): dropped, never emitted. */
export interface Conflict {
  orderId: string;
  requestId: string;
  /** The dropped record's fingerprint. */
  requestHash: string | null;
  /** The fingerprint that holds the id (stored, or first in this chunk). */
  winnerHash: string | null;
  /** Whether the winner was stored before this chunk. */
  stored: boolean;
}

/** The outcome of {@link planChunk}. */
export interface ChunkPlan {
  /** New rows, first record per id. */
  write: StoredOrder[];
  /** One event per order id stored with its record's fingerprint (new or earlier), with the stored order. */
  emit: OrderCreated[];
  conflicts: Conflict[];
  /** Records whose order was already stored with the same fingerprint (replays, retries): not rewritten, re-emitted. */
  replays: number;
  /** Later records of an id within the chunk with the first one's fingerprint: nothing more to do. */
  duplicates: number;
  /** What became of each record, by its index in the chunk (a span attribute per record). */
  outcomes: RecordOutcome[];
}

/** What the plan does with one record. */
export type RecordOutcome = 'written' | 'replay' | 'duplicate' | 'conflict';

/** The ids the plan needs to look up: every order id of the chunk, once, in first-seen order. */
export function chunkIds(records: readonly OrderAccepted[]): string[] {
  return [...new Set(records.map((r) => r.order.id))];
}

/**
 * Plan a chunk. Per order id, the first record wins: stored before with the same fingerprint → no
 * write, emit the stored order (a replay re-emits; the ledger's upsert absorbs it); stored with
 * another fingerprint → conflict; not stored → write it and emit it. A later record of the same id
 * with the winner's fingerprint is a duplicate, with another one a conflict.
 */
export function planChunk(
  records: readonly OrderAccepted[],
  existing: ReadonlyMap<string, StoredOrder>,
): ChunkPlan {
  const plan: ChunkPlan = {
    write: [],
    emit: [],
    conflicts: [],
    replays: 0,
    duplicates: 0,
    outcomes: [],
  };
  /** The fingerprint holding each id seen in this chunk, and whether it came from the table. */
  const winners = new Map<string, { hash: string | null; stored: boolean }>();
  for (const r of records) {
    const id = r.order.id;
    const seen = winners.get(id);
    if (seen) {
      if (seen.hash === r.requestHash) {
        plan.duplicates++;
        plan.outcomes.push('duplicate');
      } else {
        plan.conflicts.push(conflict(r, seen.hash, seen.stored));
        plan.outcomes.push('conflict');
      }
      continue;
    }
    const row = existing.get(id);
    if (row) {
      winners.set(id, { hash: row.requestHash, stored: true });
      if (row.requestHash !== r.requestHash) {
        plan.conflicts.push(conflict(r, row.requestHash, true));
        plan.outcomes.push('conflict');
        continue;
      }
      plan.outcomes.push('replay');
      plan.replays++;
      plan.emit.push(created(r, row.order));
      continue;
    }
    winners.set(id, { hash: r.requestHash, stored: false });
    plan.outcomes.push('written');
    plan.write.push({ order: r.order, requestHash: r.requestHash });
    plan.emit.push(created(r, r.order));
  }
  return plan;
}

function conflict(r: OrderAccepted, winnerHash: string | null, stored: boolean): Conflict {
  return {
    orderId: r.order.id,
    requestId: r.requestId,
    requestHash: r.requestHash,
    winnerHash,
    stored,
  };
}

/** The `orders.v1` event: the stored order, and who asked for it (from the record). */
function created(r: OrderAccepted, order: OrderCreated['order']): OrderCreated {
  return {
    type: 'order.created',
    version: 1,
    order,
    subject: r.subject,
    ...(r.clientId !== undefined ? { clientId: r.clientId } : {}),
    ...(r.peer !== undefined ? { peer: r.peer } : {}),
    requestId: r.requestId,
  };
}
