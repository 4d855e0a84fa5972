import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '@trellis/service-platform/env';
import { envProblems } from '@trellis/service-platform/env-schema';
import { ordersApiEnvSchema } from '../src/env.ts';

const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };
const dir = mkdtempSync(join(tmpdir(), 'orders-api-config-'));
const pem = join(dir, 'ca.pem');
writeFileSync(pem, 'not parsed at load time');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig(base);
    expect(c.server).toEqual({
      host: '127.0.0.1',
      port: 8080,
      logLevel: 'info',
      shutdownGraceMs: 10_000,
    });
    expect(c.app.cassandra).toEqual({
      contactPoints: ['127.0.0.1:9042'],
      localDataCenter: 'datacenter1',
      consistency: 'LOCAL_QUORUM',
    });
    expect(c.app.kafka).toEqual({ brokers: ['127.0.0.1:9092'], clientId: 'orders-api' });
    expect(c.app.intakeTopic).toBe('orders.intake.v1');
    expect(c.app.queue).toEqual({ kind: 'kafka' });
    expect(c.app.publishTimeoutMs).toBe(5_000);
    expect(c.app.orderCacheEntries).toBe(10_000);
    expect(c.app.identity).toEqual({
      payloadHeader: 'x-jwt-payload',
      xfccHeader: 'x-forwarded-client-cert',
      requirePeer: false,
    });
  });

  it('reads TLS files, address translation and header names', () => {
    const c = loadConfig({
      ...base,
      CASSANDRA_TLS_CA_FILE: pem,
      CASSANDRA_TLS_CERT_FILE: pem,
      CASSANDRA_TLS_KEY_FILE: pem,
      CASSANDRA_TLS_SERVER_ID: 'spiffe://trellis.local/ns/data/sa/cassandra',
      CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:15042',
      KAFKA_TLS_CA_FILE: pem,
      IDENTITY_PAYLOAD_HEADER: 'X-Claims',
    });
    expect(c.app.cassandra.tls).toEqual({
      caFile: pem,
      certFile: pem,
      keyFile: pem,
      serverId: 'spiffe://trellis.local/ns/data/sa/cassandra',
    });
    expect(c.app.cassandra.translateTo).toBe('127.0.0.1:15042');
    expect(c.app.kafka.tls).toEqual({ caFile: pem });
    expect(c.app.identity?.payloadHeader).toBe('x-claims');
  });

  it('reads the order queue: Kafka by default (SQS variables ignored), SQS with its URL and region', () => {
    const sqs = {
      SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo',
      SQS_REGION: 'eu-west-1',
    };
    expect(loadConfig({ ...base, ...sqs, INTAKE_TOPIC: 'intake' }).app).toMatchObject({
      queue: { kind: 'kafka' },
      intakeTopic: 'intake',
    });
    expect(loadConfig({ ...base, ...sqs, ORDERS_QUEUE: 'sqs' }).app.queue).toEqual({
      kind: 'sqs',
      ...{ queueUrl: sqs.SQS_QUEUE_URL, region: 'eu-west-1' },
    });
    const local = 'http://127.0.0.1:9324';
    expect(
      loadConfig({
        ...base,
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: `${local}/000000000000/orders.fifo`,
        SQS_REGION: 'elasticmq',
        SQS_ENDPOINT: local,
      }).app.queue,
    ).toEqual({
      kind: 'sqs',
      queueUrl: `${local}/000000000000/orders.fifo`,
      region: 'elasticmq',
      endpoint: local,
    });
  });

  it.each([
    [{ CASSANDRA_CONTACT_POINTS: undefined }, 'CASSANDRA_CONTACT_POINTS', 'is required'],
    [{ KAFKA_BROKERS: '' }, 'KAFKA_BROKERS', 'is required'],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS', 'must be host:port'],
    [
      { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042,127.0.0.1:99999' },
      'CASSANDRA_CONTACT_POINTS',
      'must be host:port',
    ],
    [{ PORT: 'eighty' }, 'PORT', 'must be an integer'],
    [{ PORT: '0' }, 'PORT', 'must be between 1 and 65535'],
    [{ CASSANDRA_CONSISTENCY: 'ALL' }, 'CASSANDRA_CONSISTENCY', 'must be one of'],
    [
      { CASSANDRA_TLS_CA_FILE: join(dir, 'missing.pem') },
      'CASSANDRA_TLS_CA_FILE',
      'does not exist',
    ],
    [{ KAFKA_TLS_CERT_FILE: pem }, 'KAFKA_TLS_CERT_FILE', 'KAFKA_TLS_CA_FILE is not'],
    [
      { KAFKA_TLS_CA_FILE: pem, KAFKA_TLS_CERT_FILE: pem },
      'KAFKA_TLS_KEY_FILE',
      'is required when',
    ],
    [
      { CASSANDRA_TLS_CA_FILE: pem, CASSANDRA_TLS_SERVER_ID: 'cassandra' },
      'CASSANDRA_TLS_SERVER_ID',
      'SPIFFE',
    ],
    [{ IDENTITY_XFCC_HEADER: 'bad header' }, 'IDENTITY_XFCC_HEADER', 'HTTP header name'],
    [{ KAFKA_CLIENT_ID: 'a b' }, 'KAFKA_CLIENT_ID', 'must be letters'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'must be one of'],
    [{ ORDER_CACHE_ENTRIES: '-1' }, 'ORDER_CACHE_ENTRIES', 'between 0 and 1000000'],
    [{ ORDER_CACHE_ENTRIES: 'many' }, 'ORDER_CACHE_ENTRIES', 'must be an integer'],
    [{ PUBLISH_TIMEOUT_MS: '50' }, 'PUBLISH_TIMEOUT_MS', 'between 100 and 60000'],
    [{ ORDERS_QUEUE: 'rabbitmq' }, 'ORDERS_QUEUE', 'must be one of kafka, sqs'],
    [{ ORDERS_QUEUE: 'sqs', SQS_REGION: 'eu-west-1' }, 'SQS_QUEUE_URL', 'is required when'],
    [
      { ORDERS_QUEUE: 'sqs', SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/o.fifo' },
      'SQS_REGION',
      'is required when ORDERS_QUEUE=sqs',
    ],
    [
      {
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/orders',
        SQS_REGION: 'eu-west-1',
      },
      'SQS_QUEUE_URL',
      'must end in /<account>/<name>.fifo',
    ],
    [
      { ORDERS_QUEUE: 'sqs', SQS_QUEUE_URL: 'orders.fifo', SQS_REGION: 'eu-west-1' },
      'SQS_QUEUE_URL',
      'must be an http(s) URL',
    ],
    [
      {
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/o.fifo',
        SQS_REGION: 'EU West',
      },
      'SQS_REGION',
      'must be a region name',
    ],
    [
      {
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/o.fifo',
        SQS_REGION: 'eu-west-1',
        SQS_ENDPOINT: 'ftp://127.0.0.1',
      },
      'SQS_ENDPOINT',
      'must be an http(s) URL',
    ],
  ])('%j fails naming %s', (vars, variable, problem) => {
    let err: unknown;
    try {
      loadConfig({ ...base, ...vars });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as ConfigError).message).toContain(variable);
    expect((err as ConfigError).message).toContain(problem);
  });
});

describe('the env schema (@trellis/orders-api/env)', () => {
  it('declares exactly the variables loadConfig reads', () => {
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
    expect([...read].sort()).toEqual(Object.keys(ordersApiEnvSchema.properties).sort());
  });

  it('accepts the environments loadConfig accepts', () => {
    expect(envProblems(ordersApiEnvSchema, base)).toEqual([]);
    expect(
      envProblems(ordersApiEnvSchema, {
        ...base,
        CASSANDRA_TLS_CA_FILE: pem,
        CASSANDRA_TLS_SERVER_ID: 'spiffe://trellis.local/ns/data/sa/cassandra',
        CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:15042',
        IDENTITY_PAYLOAD_HEADER: 'X-Claims',
        PUBLISH_TIMEOUT_MS: '2000',
        ORDER_CACHE_ENTRIES: '0',
        INTAKE_TOPIC: 'orders.intake.v1',
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo',
        SQS_REGION: 'eu-west-1',
      }),
    ).toEqual([]);
  });

  it.each([
    [{ CASSANDRA_CONTACT_POINTS: undefined }, 'CASSANDRA_CONTACT_POINTS'],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ CASSANDRA_CONSISTENCY: 'ALL' }, 'CASSANDRA_CONSISTENCY'],
    [
      { CASSANDRA_TLS_CA_FILE: pem, CASSANDRA_TLS_SERVER_ID: 'cassandra' },
      'CASSANDRA_TLS_SERVER_ID',
    ],
    [{ IDENTITY_XFCC_HEADER: 'bad header' }, 'IDENTITY_XFCC_HEADER'],
    [{ KAFKA_CLIENT_ID: 'a b' }, 'KAFKA_CLIENT_ID'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ ORDERS_QUEUE: 'rabbitmq' }, 'ORDERS_QUEUE'],
  ])('%j is refused by both the schema and loadConfig, naming %s', (vars, variable) => {
    expect(envProblems(ordersApiEnvSchema, { ...base, ...vars }).map((p) => p.variable)).toEqual([
      variable,
    ]);
    expect(() => loadConfig({ ...base, ...vars })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, ...vars })).toThrow(variable);
  });
});
