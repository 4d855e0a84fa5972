import { Writable } from 'node:stream';
import { freePort } from '@trellis/local/harness';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';

// These paths answer before any data store is touched; the stores are real but down (closed ports).
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n'))
      if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
let app: FastifyInstance;

const token = (claims: Record<string, unknown>): string =>
  Buffer.from(JSON.stringify(claims)).toString('base64url');
const alice = { 'x-jwt-payload': token({ sub: 'alice', azp: 'web', scope: 'orders:write' }) };

beforeAll(async () => {
  app = await buildApp({
    cassandra: { contactPoints: [`127.0.0.1:${await freePort()}`], localDataCenter: 'datacenter1' },
    kafka: { brokers: [`127.0.0.1:${await freePort()}`], clientId: 'orders-api-test' },
    log: { level: 'info', stream: sink },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

const post = (body: unknown, headers: Record<string, string> = alice) =>
  app.inject({ method: 'POST', url: '/orders', headers, payload: body as Record<string, unknown> });

describe('POST /orders validation', () => {
  it.each([
    [{ quantity: 1 }, 'body.sku', 'is required'],
    [{ sku: 'A-1' }, 'body.quantity', 'is required'],
    [{ sku: 'A-1', quantity: 0 }, 'body.quantity', 'must be >= 1'],
    [{ sku: 'A-1', quantity: 1001 }, 'body.quantity', 'must be <= 1000'],
    [{ sku: 'A-1', quantity: 1.5 }, 'body.quantity', 'must be integer'],
    [{ sku: 'A-1', quantity: '5' }, 'body.quantity', 'must be integer'],
    [{ sku: '', quantity: 1 }, 'body.sku', 'must match pattern'],
    [
      { sku: 'A-1', quantity: 1, customerRef: '' },
      'body.customerRef',
      'must NOT have fewer than 1 characters',
    ],
    [{ sku: 'A-1', quantity: 1, price: 3 }, 'body.price', 'is not an allowed field'],
  ])('%j → 400 naming %s', async (body, field, message) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    const json = res.json<{ error: string; field: string; message: string }>();
    expect(json).toMatchObject({ error: 'bad_request', field });
    expect(json.message.startsWith(`${field}: ${message}`)).toBe(true);
  });

  it('rejects a body that is not JSON', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/orders',
      headers: { ...alice, 'content-type': 'application/json' },
      payload: '{"sku":',
    });
    expect(res.statusCode).toBe(400);
  });
});

describe('Idempotency-Key', () => {
  it.each([
    ['"has space"', 'must be 1-128'],
    ['"a", "b"', 'must be 1-128'],
    ['x'.repeat(129), 'must be 1-128'],
  ])('%s → 400 naming the header, before any store is needed', async (key, message) => {
    const res = await post({ sku: 'A-1', quantity: 1 }, { ...alice, 'idempotency-key': key });
    expect(res.statusCode).toBe(400);
    const json = res.json<{ error: string; field: string; message: string }>();
    expect(json).toMatchObject({ error: 'bad_request', field: 'headers.idempotency-key' });
    expect(json.message).toContain(message);
  });

  it('validates the body before the key', async () => {
    const res = await post({ sku: 'A-1' }, { ...alice, 'idempotency-key': '"bad key"' });
    expect(res.json()).toMatchObject({ field: 'body.quantity' });
  });

  it('takes a valid key in either form, and answers a retryable 503 while the store it must read is down', async () => {
    for (const key of ['"k-1"', 'k-1']) {
      const res = await post({ sku: 'A-1', quantity: 1 }, { ...alice, 'idempotency-key': key });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json()).toMatchObject({
        error: 'unavailable',
        message: 'cassandra is not connected; retry with the same key',
      });
    }
  });
});

describe('identity headers', () => {
  it('answers 401 without the payload header, before validating the body', async () => {
    const res = await post({ nonsense: true }, {});
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json()).toMatchObject({
      error: 'unauthenticated',
      message: 'missing x-jwt-payload header',
    });
  });

  it.each([
    ['garbage', { 'x-jwt-payload': '%%%' }],
    ['JSON without sub', { 'x-jwt-payload': token({ iss: 'x' }) }],
    ['a garbled XFCC', { ...alice, 'x-forwarded-client-cert': 'URI="spiffe://unterminated' }],
  ])('answers 401 for %s', async (_what, headers) => {
    const res = await post({ sku: 'A-1', quantity: 1 }, headers);
    expect(res.statusCode).toBe(401);
  });

  it('guards GET too', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/orders/0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
    });
    expect(res.statusCode).toBe(401);
  });

  it('logs the caller identity (subject, client, SPIFFE peer) on the request lines', async () => {
    await post(
      { sku: 'A-1', quantity: 0 },
      {
        ...alice,
        'x-request-id': 'ident-1',
        'x-forwarded-client-cert':
          'By=spiffe://td/ns/shop/sa/orders-api;URI=spiffe://td/ns/edge/sa/ingress',
      },
    );
    const done = lines.find((l) => l.requestId === 'ident-1' && l.msg === 'request completed');
    expect(done?.caller).toEqual({
      sub: 'alice',
      client: 'web',
      peer: 'spiffe://td/ns/edge/sa/ingress',
    });
    expect(done?.service).toBe('orders-api');
  });
});

describe('request log', () => {
  it('logs the path without its query, where a token may ride', async () => {
    await app.inject({
      method: 'POST',
      url: '/orders?access_token=not.a.token',
      headers: { ...alice, 'x-request-id': 'query-1' },
      payload: { sku: 'A-1', quantity: 0 },
    });
    const done = lines.find((l) => l.requestId === 'query-1' && l.msg === 'request completed');
    expect(done?.req).toEqual({ method: 'POST', url: '/orders' });
    expect(JSON.stringify(lines)).not.toContain('not.a.token');
  });
});

describe('GET /orders/:id', () => {
  const lookups = async (): Promise<string[]> =>
    (await app.inject({ method: 'GET', url: '/metrics' })).body
      .split('\n')
      .filter((l) => l.startsWith('orders_api_order_cache_lookups_total{'));

  it('exports the read cache counters on /metrics, without an identity (pod-local)', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE orders_api_order_cache_lookups_total counter');
    expect(res.body).toContain('# TYPE orders_api_order_cache_hit_ratio gauge');
    expect(res.body).toMatch(/^orders_api_order_cache_entries 0$/m);
  });

  it('looks in the cache only after authentication', async () => {
    const id = '0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e';
    const before = await lookups();
    expect((await app.inject({ method: 'GET', url: `/orders/${id}` })).statusCode).toBe(401);
    expect(await lookups()).toEqual(before);
    // The positive control: an authenticated read does look (a miss; the store is down: 503).
    const res = await app.inject({ method: 'GET', url: `/orders/${id}`, headers: alice });
    expect(res.statusCode).toBe(503);
    expect(await lookups()).not.toEqual(before);
  });

  it('answers 400 for a malformed id', async () => {
    const res = await app.inject({ method: 'GET', url: '/orders/not-a-uuid', headers: alice });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ field: 'params.id' });
  });
});

describe('request id', () => {
  it('honours x-request-id and echoes it', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'edge-123' },
    });
    expect(res.headers['x-request-id']).toBe('edge-123');
  });

  it('generates one when absent or unsafe, and logs with it', async () => {
    const a = await post({ sku: 'A-1', quantity: 0 });
    const b = await post(
      { sku: 'A-1', quantity: 0 },
      { ...alice, 'x-request-id': 'bad id\nwith newline' },
    );
    const idA = a.headers['x-request-id'] as string;
    const idB = b.headers['x-request-id'] as string;
    expect(idA).toMatch(/^[0-9a-f-]{36}$/);
    expect(idB).toMatch(/^[0-9a-f-]{36}$/);
    expect(idA).not.toBe(idB);
    expect(a.json()).toMatchObject({ requestId: idA });
    const line = lines.find((l) => l.requestId === idA && l.msg === 'request completed');
    expect(line).toMatchObject({
      req: { method: 'POST', url: '/orders' },
      res: { statusCode: 400 },
    });
  });
});

describe('health', () => {
  it('is alive while its dependencies are down', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
  });

  it('is not ready while Cassandra and Kafka are down', async () => {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not_ready', checks: { cassandra: false, kafka: false } });
  });

  it('refuses orders with 503 rather than hanging while the queue is down', async () => {
    const res = await post({ sku: 'A-1', quantity: 1 });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({ error: 'unavailable', message: 'kafka is not connected' });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });
});

describe('with ORDERS_QUEUE=sqs', () => {
  // The SQS endpoint is a closed port: every SendMessage fails to connect.
  let sqsApp: FastifyInstance;
  beforeAll(async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    sqsApp = await buildApp({
      cassandra: {
        contactPoints: [`127.0.0.1:${await freePort()}`],
        localDataCenter: 'datacenter1',
      },
      kafka: { brokers: ['127.0.0.1:9'], clientId: 'orders-api-test' },
      queue: {
        kind: 'sqs',
        queueUrl: `${endpoint}/000000000000/orders.fifo`,
        region: 'elasticmq',
        endpoint,
      },
      sqsCredentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      publishTimeoutMs: 1_000,
      log: false,
    });
    await sqsApp.ready();
  });
  afterAll(async () => {
    await sqsApp?.close();
  });

  it('checks SQS instead of Kafka for readiness (nothing to probe: ready at once)', async () => {
    const res = await sqsApp.inject({ method: 'GET', url: '/readyz' });
    expect(res.json()).toEqual({ status: 'not_ready', checks: { cassandra: false, sqs: true } });
  });

  it('answers a keyless order the queue did not take with 503, Retry-After and the id it would have had', async () => {
    const res = await sqsApp.inject({
      method: 'POST',
      url: '/orders',
      headers: alice,
      payload: { sku: 'A-1', quantity: 1 },
    });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    const body = res.json<{ error: string; message: string; orderId: string }>();
    expect(body.error).toBe('unavailable');
    expect(body.message).toContain('the order queue (sqs) did not acknowledge the order');
    expect(body.orderId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
