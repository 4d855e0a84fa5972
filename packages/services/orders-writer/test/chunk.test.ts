import { randomUUID } from 'node:crypto';
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { describe, expect, it } from 'vitest';
import { chunkIds, planChunk } from '../src/chunk.ts';
import { decodeRecords } from '../src/intake-kafka.ts';
import { BATCH_MAX_BYTES, batchesOf, rowBytes, type StoredOrder } from '../src/rows.ts';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

function record(id: string, hash: string | null, over: Partial<OrderAccepted> = {}): OrderAccepted {
  return {
    type: 'order.accepted',
    version: 1,
    order: {
      id,
      sku: `sku-${hash?.[0] ?? 'n'}`,
      quantity: hash === H2 ? 2 : 1,
      subject: 'alice',
      createdAt: '2026-12-07T00:00:00.000Z',
    },
    requestHash: hash,
    subject: 'alice',
    clientId: 'web',
    peer: 'spiffe://trellis.test/ns/edge/sa/ingress',
    requestId: `req-${randomUUID()}`,
    ...over,
  };
}
const none = new Map<string, StoredOrder>();

describe('planChunk', () => {
  it('writes and emits a new order, with who asked for it from the record', () => {
    const r = record(randomUUID(), H1);
    const plan = planChunk([r], none);
    expect(plan.write).toEqual([{ order: r.order, requestHash: H1 }]);
    expect(plan.emit).toEqual([
      {
        type: 'order.created',
        version: 1,
        order: r.order,
        subject: 'alice',
        clientId: 'web',
        peer: 'spiffe://trellis.test/ns/edge/sa/ingress',
        requestId: r.requestId,
      },
    ]);
    expect(plan.conflicts).toEqual([]);
  });

  it('keeps the first record per order id: a later one with the same fingerprint is a duplicate', () => {
    const id = randomUUID();
    const first = record(id, H1);
    const again = record(id, H1, { requestId: 'retry' });
    const plan = planChunk([first, again], none);
    expect(plan.write).toHaveLength(1);
    expect(plan.emit.map((e) => e.requestId)).toEqual([first.requestId]);
    expect(plan.duplicates).toBe(1);
  });

  it('drops a later record with another fingerprint as a conflict, and the first still wins', () => {
    const id = randomUUID();
    const first = record(id, H1);
    const other = record(id, H2);
    const plan = planChunk([first, other], none);
    expect(plan.write).toEqual([{ order: first.order, requestHash: H1 }]);
    expect(plan.emit.map((e) => e.order)).toEqual([first.order]);
    expect(plan.conflicts).toEqual([
      { orderId: id, requestId: other.requestId, requestHash: H2, winnerHash: H1, stored: false },
    ]);
  });

  it('a replay of a stored order is not rewritten but re-emitted, with the STORED order', () => {
    const id = randomUUID();
    const r = record(id, H1);
    const stored: StoredOrder = {
      order: { ...r.order, createdAt: '2026-12-06T23:59:59.000Z' },
      requestHash: H1,
    };
    const plan = planChunk([r], new Map([[id, stored]]));
    expect(plan.write).toEqual([]);
    expect(plan.replays).toBe(1);
    expect(plan.emit).toHaveLength(1);
    expect(plan.emit[0]?.order).toEqual(stored.order);
    expect(plan.emit[0]?.requestId).toBe(r.requestId);
  });

  it('a record whose id is stored with another fingerprint conflicts and emits nothing', () => {
    const id = randomUUID();
    const stored: StoredOrder = { order: record(id, H1).order, requestHash: H1 };
    const plan = planChunk([record(id, H2), record(id, H2)], new Map([[id, stored]]));
    expect(plan.write).toEqual([]);
    expect(plan.emit).toEqual([]);
    expect(plan.conflicts.map((c) => [c.winnerHash, c.stored])).toEqual([
      [H1, true],
      [H1, true],
    ]);
  });

  it('keyless orders (no fingerprint) replay as themselves', () => {
    const id = randomUUID();
    const r = record(id, null);
    const plan = planChunk([r], new Map([[id, { order: r.order, requestHash: null }]]));
    expect(plan.emit).toHaveLength(1);
    expect(plan.conflicts).toEqual([]);
  });

  it('keeps queue order across ids, and looks each id up once', () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const records = [record(a, H1), record(b, H1), record(a, H2)];
    expect(chunkIds(records)).toEqual([a, b]);
    expect(planChunk(records, none).emit.map((e) => e.order.id)).toEqual([a, b]);
  });
});

describe('decodeRecords (the Kafka side)', () => {
  it('keeps the well-formed records in order and names why each malformed one is skipped', () => {
    const good = record(randomUUID(), H1);
    const other = record(randomUUID(), null);
    const out = decodeRecords([
      { offset: '1', value: Buffer.from(JSON.stringify(good)) },
      { offset: '2', value: Buffer.from('{not json') },
      { offset: '3', value: Buffer.from(JSON.stringify({ ...good, type: 'order.created' })) },
      { offset: '4', value: null },
      { offset: '5', value: Buffer.from(JSON.stringify(other)) },
    ]);
    expect(out.records).toEqual([good, other]);
    expect(out.malformed).toEqual([
      { offset: '2', error: 'record value is not JSON' },
      { offset: '3', error: 'record.type is "order.created", want "order.accepted"' },
      { offset: '4', error: 'record has no value' },
    ]);
  });
});

describe('batchesOf (UNLOGGED BATCH sizes)', () => {
  const row = (customerRef?: string): StoredOrder => ({
    order: {
      id: randomUUID(),
      sku: 'SKU-42',
      quantity: 1,
      subject: 'alice',
      createdAt: '2026-12-07T00:00:00.000Z',
      ...(customerRef !== undefined ? { customerRef } : {}),
    },
    requestHash: H1,
  });

  it('sends a default chunk of typical orders as one batch', () => {
    const rows = Array.from({ length: 100 }, () => row('c-7'));
    expect(rowBytes(rows[0]!)).toBeLessThan(300);
    expect(batchesOf(rows)).toEqual([rows]);
  });

  it('splits big rows so that no batch passes the limit, in order, losing none', () => {
    // customerRef of 128 four-byte characters: the largest the API accepts.
    const rows = Array.from({ length: 1000 }, () => row('😀'.repeat(128)));
    const batches = batchesOf(rows);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches)
      expect(b.reduce((n, r) => n + rowBytes(r), 0)).toBeLessThanOrEqual(BATCH_MAX_BYTES);
    expect(batches.flat()).toEqual(rows);
    expect(BATCH_MAX_BYTES).toBeLessThan(50 * 1024);
  });
});
