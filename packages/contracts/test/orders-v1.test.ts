import { describe, expect, it } from 'vitest';
import { decodeOrderCreated, encodeOrderCreated, type OrderCreated } from '../src/orders-v1.ts';

const event: OrderCreated = {
  type: 'order.created',
  version: 1,
  order: {
    id: '0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
    sku: 'SKU-1',
    quantity: 2,
    subject: 'alice',
    createdAt: '2026-01-02T03:04:05.678Z',
  },
  subject: 'alice',
  requestId: 'r-1',
};

describe('orders.v1 contract', () => {
  it('round-trips', () => {
    expect(decodeOrderCreated(encodeOrderCreated(event))).toEqual(event);
  });

  it.each([
    [null, 'event has no value'],
    [Buffer.from('{'), 'event value is not JSON'],
    [Buffer.from(JSON.stringify({ ...event, type: 'order.deleted' })), 'event.type'],
    [Buffer.from(JSON.stringify({ ...event, version: 2 })), 'event.version'],
    [
      Buffer.from(JSON.stringify({ ...event, order: { ...event.order, id: 'x' } })),
      'event.order.id',
    ],
    [
      Buffer.from(JSON.stringify({ ...event, order: { ...event.order, quantity: 1.5 } })),
      'event.order.quantity',
    ],
    [Buffer.from(JSON.stringify({ ...event, subject: '' })), 'event.subject'],
  ])('rejects a bad value naming the field (%#)', (value, field) => {
    expect(() => decodeOrderCreated(value)).toThrow(field);
  });
});
