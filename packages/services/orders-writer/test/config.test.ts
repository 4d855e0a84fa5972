import { envProblems } from '@trellis/service-platform/env-schema';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ordersWriterEnvSchema } from '../src/env.ts';

const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };
const sqs = {
  ...base,
  ORDERS_QUEUE: 'sqs',
  SQS_QUEUE_URL: 'http://127.0.0.1:9324/000000000000/orders.fifo',
  SQS_REGION: 'eu-west-1',
};

describe('orders-writer config', () => {
  it('defaults: port 8082, group orders-writer, orders.intake.v1 → orders.v1, chunks of 100 / 20 ms, kafka queue', () => {
    const c = loadConfig(base);
    expect(c.server.port).toBe(8082);
    expect(c.app).toMatchObject({
      groupId: 'orders-writer',
      intakeTopic: 'orders.intake.v1',
      ordersTopic: 'orders.v1',
      batchMax: 100,
      batchWaitMs: 20,
      queue: { kind: 'kafka' },
      migrate: true,
    });
    expect(c.app.kafka.clientId).toBe('orders-writer');
  });

  it('reads the bounds and topics it is given', () => {
    const c = loadConfig({
      ...base,
      WRITER_BATCH_MAX: '1000',
      WRITER_BATCH_WAIT_MS: '0',
      INTAKE_TOPIC: 'in.v1',
      ORDERS_TOPIC: 'out.v1',
      KAFKA_GROUP_ID: 'w2',
    });
    expect(c.app).toMatchObject({
      batchMax: 1000,
      batchWaitMs: 0,
      intakeTopic: 'in.v1',
      ordersTopic: 'out.v1',
      groupId: 'w2',
    });
  });

  it.each([
    ['WRITER_BATCH_MAX', '0', 'must be between 1 and 1000, got 0'],
    ['WRITER_BATCH_MAX', '1001', 'must be between 1 and 1000, got 1001'],
    ['WRITER_BATCH_MAX', 'ten', 'must be an integer, got "ten"'],
    ['WRITER_BATCH_WAIT_MS', '5001', 'must be between 0 and 5000, got 5001'],
    ['WRITER_BATCH_WAIT_MS', '-1', 'must be between 0 and 5000, got -1'],
    ['KAFKA_GROUP_ID', 'no spaces', 'must be letters, digits'],
    ['ORDERS_QUEUE', 'rabbitmq', 'must be one of kafka, sqs, got "rabbitmq"'],
  ])('names %s=%s', (name, value, problem) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(
      `invalid configuration: ${name} ${problem}`,
    );
  });

  it('takes an SQS FIFO queue with its region and an optional endpoint', () => {
    expect(loadConfig(sqs).app.queue).toEqual({
      kind: 'sqs',
      queueUrl: sqs.SQS_QUEUE_URL,
      region: 'eu-west-1',
    });
    expect(loadConfig({ ...sqs, SQS_ENDPOINT: 'http://127.0.0.1:9324' }).app.queue).toMatchObject({
      endpoint: 'http://127.0.0.1:9324',
    });
  });

  it.each([
    [{ ...sqs, SQS_QUEUE_URL: undefined }, 'SQS_QUEUE_URL is required when ORDERS_QUEUE=sqs'],
    [
      { ...sqs, SQS_QUEUE_URL: 'http://127.0.0.1:9324/000000000000/orders' },
      'SQS_QUEUE_URL must end in /<account>/<name>.fifo',
    ],
    [{ ...sqs, SQS_REGION: undefined }, 'SQS_REGION is required when ORDERS_QUEUE=sqs'],
    [{ ...sqs, SQS_REGION: 'EU West' }, 'SQS_REGION must be a region name'],
    [{ ...sqs, SQS_ENDPOINT: 'ftp://x' }, 'SQS_ENDPOINT must be an http(s) URL'],
  ])('names the SQS variable at fault (%#)', (vars, message) => {
    expect(() => loadConfig(vars)).toThrow(`invalid configuration: ${message}`);
  });

  it('reads only variables its env schema (@trellis/orders-writer/env) declares', () => {
    const read = new Set<string>();
    const vars = new Proxy<Record<string, string | undefined>>(
      { ...sqs },
      {
        get: (target, key) => {
          if (typeof key === 'string') read.add(key);
          return typeof key === 'string' ? target[key] : undefined;
        },
      },
    );
    loadConfig(vars);
    const declared = Object.keys(ordersWriterEnvSchema.properties);
    // The writer serves no authenticated route, so it has no use for the IDENTITY_* variables.
    const unused = declared.filter((v) => v.startsWith('IDENTITY_'));
    expect([...read].sort()).toEqual(declared.filter((v) => !unused.includes(v)).sort());
    expect(envProblems(ordersWriterEnvSchema, sqs)).toEqual([]);
  });
});
