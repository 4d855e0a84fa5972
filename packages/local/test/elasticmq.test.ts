import { describe, expect, it } from 'vitest';
import {
  checkElasticMqQueues,
  elasticMqConfig,
  elasticMqStartedVersion,
} from '../src/harness/elasticmq.ts';

describe('ElasticMQ config (harness)', () => {
  it('binds the REST API and the queue URLs to loopback on the given port, with the queues', () => {
    const conf = elasticMqConfig(41234, [
      { name: 'orders.fifo', fifo: true, visibilityTimeoutSeconds: 2 },
      { name: 'plain' },
    ]);
    expect(conf).toContain('include classpath("application.conf")');
    expect(conf).toMatch(/rest-sqs \{[^}]*bind-port = 41234[^}]*bind-hostname = "127\.0\.0\.1"/);
    expect(conf).toMatch(/node-address \{[^}]*host = "127\.0\.0\.1"[^}]*port = 41234/);
    expect(conf).toMatch(
      /"orders\.fifo" \{\s+fifo = true\s+contentBasedDeduplication = false\s+defaultVisibilityTimeout = 2 seconds/,
    );
    expect(conf).toMatch(/"plain" \{\s+fifo = false[^}]*defaultVisibilityTimeout = 30 seconds/);
  });

  it('refuses bad queues, naming the field', () => {
    expect(() => checkElasticMqQueues([])).toThrow('elasticmq: queues is empty');
    expect(() => checkElasticMqQueues([{ name: 'orders', fifo: true }])).toThrow(
      `elasticmq: queues[0].name "orders" is FIFO and must end in '.fifo'`,
    );
    expect(() => checkElasticMqQueues([{ name: 'a"b' }])).toThrow('queues[0].name "a\\"b"');
    expect(() => checkElasticMqQueues([{ name: 'q', contentBasedDeduplication: true }])).toThrow(
      'queues[0].contentBasedDeduplication needs fifo = true',
    );
    expect(() => checkElasticMqQueues([{ name: 'q', visibilityTimeoutSeconds: 1.5 }])).toThrow(
      'queues[0].visibilityTimeoutSeconds 1.5',
    );
    expect(() => checkElasticMqQueues([{ name: 'q' }, { name: 'q' }])).toThrow(
      'queues[1].name q is configured twice',
    );
  });

  it('reads the version from the start line of the log', () => {
    expect(
      elasticMqStartedVersion(
        'x\n21:42:45.977 [main] INFO  org.elasticmq.server.Main$ - === ElasticMQ server (1.7.1) started in 6807 ms ===\n',
      ),
    ).toBe('1.7.1');
    expect(elasticMqStartedVersion('Starting ElasticMQ server (1.7.1) ...')).toBeNull();
  });
});
