/**
 * SqsOrderQueue's argument checks, which fail before any request (the real queue:
 * queue.component.test.ts), and the Kafka record of an accepted order.
 */
import type { OrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { describe, expect, it } from 'vitest';
import { decodeOrderAccepted } from '@trellis/contracts/orders-intake-v1';
import { QueueError, SqsOrderQueue, intakeMessage } from '../src/queue.ts';

const base = {
  queueUrl: 'http://127.0.0.1:9/000000000000/orders.fifo',
  region: 'elasticmq',
  endpoint: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
};

describe('SqsOrderQueue arguments', () => {
  it('accepts a FIFO queue URL, an http(s) endpoint and a region name', () => {
    const q = new SqsOrderQueue(base);
    expect(q).toBeInstanceOf(SqsOrderQueue);
    q.close();
  });

  it.each([
    [{ queueUrl: 'orders.fifo' }, 'sqs queue: queueUrl "orders.fifo" is not a URL'],
    [
      { queueUrl: 'http://127.0.0.1:9/000000000000/orders' },
      'must end in /<account>/<name>.fifo (a FIFO queue)',
    ],
    [{ endpoint: 'ftp://127.0.0.1' }, 'sqs queue: endpoint "ftp://127.0.0.1" must be http(s)'],
    [{ region: 'EU West' }, 'sqs queue: region "EU West" is not a region name'],
  ])('refuses %j, naming the field', (bad, message) => {
    expect(() => new SqsOrderQueue({ ...base, ...bad })).toThrow(message);
  });

  it('refuses a bad dedup id, batch size or wait before sending anything', async () => {
    const q = new SqsOrderQueue(base);
    const e = { order: { id: 'x' } } as OrderAccepted;
    await expect(q.publish(e, '')).rejects.toThrow('dedupId "" must be 1-128 printable ASCII');
    await expect(q.publish(e, 'a'.repeat(129))).rejects.toBeInstanceOf(QueueError);
    await expect(q.receiveBatch(11, 0)).rejects.toThrow('max 11 must be an integer from 1 to 10');
    await expect(q.receiveBatch(0, 0)).rejects.toThrow('max 0');
    await expect(q.receiveBatch(10, 20_001)).rejects.toThrow(
      'waitMs 20001 must be from 0 to 20000',
    );
    await expect(q.ack({ orders: [], malformed: [] })).resolves.toBeUndefined();
    q.close();
  });
});

describe('intakeMessage (the Kafka record of orders.intake.v1)', () => {
  it('is keyed by order id, carries the record as JSON and the request id as a header', () => {
    const record: OrderAccepted = {
      type: 'order.accepted',
      version: 1,
      order: {
        id: '0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
        sku: 'A-1',
        quantity: 2,
        subject: 'alice',
        createdAt: '2026-12-07T00:00:00.000Z',
      },
      requestHash: 'f'.repeat(64),
      subject: 'alice',
      clientId: 'web',
      requestId: 'req-1',
    };
    const m = intakeMessage(record);
    expect(m.key).toBe(record.order.id);
    expect(m.headers).toEqual({ 'x-request-id': 'req-1' });
    expect(decodeOrderAccepted(m.value as Buffer)).toEqual(record);
    // A retry of the same order (another request) has the same key: one partition, one order.
    expect(intakeMessage({ ...record, requestId: 'req-2' }).key).toBe(m.key);
  });
});
