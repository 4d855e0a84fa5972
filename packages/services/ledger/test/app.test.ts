import { freePort } from '@trellis/local/harness';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { envProblems } from '@trellis/service-platform/env-schema';
import { loadConfig } from '../src/config.ts';
import { ledgerEnvSchema } from '../src/env.ts';

// Paths that answer without a data store; the stores are real but down (closed ports).
let app: FastifyInstance;
const alice = { 'x-jwt-payload': Buffer.from('{"sub":"alice"}').toString('base64url') };

beforeAll(async () => {
  app = await buildApp({
    cassandra: { contactPoints: [`127.0.0.1:${await freePort()}`], localDataCenter: 'datacenter1' },
    kafka: { brokers: [`127.0.0.1:${await freePort()}`], clientId: 'ledger-test' },
    log: false,
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

describe('ledger health', () => {
  it('is alive but not ready while Cassandra and Kafka are down', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not_ready', checks: { cassandra: false, kafka: false } });
  });
});

describe('ledger /metrics', () => {
  it('serves the consumer counters without an identity (pod-local), at 0 before any event', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE ledger_events_projected_total counter');
    expect(res.body).toMatch(/^ledger_events_projected_total 0$/m);
    expect(res.body).toMatch(/^ledger_malformed_events_total 0$/m);
  });
});

describe('GET /entries/:orderId', () => {
  it('answers 401 without an identity', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/entries/0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
    });
    expect(res.statusCode).toBe(401);
  });

  it('answers 400 for a malformed id', async () => {
    const res = await app.inject({ method: 'GET', url: '/entries/42', headers: alice });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ field: 'params.orderId' });
  });

  it('echoes the request id', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/readyz',
      headers: { 'x-request-id': 'l-1' },
    });
    expect(res.headers['x-request-id']).toBe('l-1');
  });
});

describe('ledger config', () => {
  const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };

  it('defaults to group ledger on orders.v1, port 8081', () => {
    const c = loadConfig(base);
    expect(c.app.groupId).toBe('ledger');
    expect(c.app.topic).toBe('orders.v1');
    expect(c.app.kafka.clientId).toBe('ledger');
    expect(c.server.port).toBe(8081);
  });

  it('names a bad group id', () => {
    expect(() => loadConfig({ ...base, KAFKA_GROUP_ID: 'no spaces' })).toThrow('KAFKA_GROUP_ID');
    expect(envProblems(ledgerEnvSchema, { ...base, KAFKA_GROUP_ID: 'no spaces' })).toEqual([
      expect.objectContaining({ variable: 'KAFKA_GROUP_ID' }),
    ]);
  });

  it('reads exactly the variables its env schema (@trellis/ledger/env) declares', () => {
    const read = new Set<string>();
    const vars = new Proxy<Record<string, string | undefined>>(
      { ...base },
      {
        get: (target, key) => {
          if (typeof key === 'string') read.add(key);
          return typeof key === 'string' ? target[key] : undefined;
        },
      },
    );
    loadConfig(vars);
    expect([...read].sort()).toEqual(Object.keys(ledgerEnvSchema.properties).sort());
    expect(envProblems(ledgerEnvSchema, base)).toEqual([]);
  });
});
