import { freePort } from '@trellis/local/harness';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';

// The stores are real but down (closed ports): the probes answer without them.
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApp({
    cassandra: { contactPoints: [`127.0.0.1:${await freePort()}`], localDataCenter: 'datacenter1' },
    kafka: { brokers: [`127.0.0.1:${await freePort()}`], clientId: 'orders-writer-test' },
    log: false,
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

describe('orders-writer health', () => {
  it('is alive but not ready while Cassandra and Kafka are down', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'not_ready',
      checks: { cassandra: false, kafka: false, queue: false },
    });
  });

  it('serves its counters on /metrics without an identity (pod-local), at 0 before any chunk', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'chunks',
      'orders_written',
      'events_emitted',
      'replays',
      'duplicates',
      'conflicts',
      'malformed_records',
    ]) {
      expect(res.body).toContain(`# TYPE orders_writer_${name}_total counter`);
      expect(res.body).toMatch(new RegExp(`^orders_writer_${name}_total 0$`, 'm'));
    }
  });

  it('serves nothing else', async () => {
    const res = await app.inject({ method: 'GET', url: '/orders/x' });
    expect(res.statusCode).toBe(404);
  });
});
