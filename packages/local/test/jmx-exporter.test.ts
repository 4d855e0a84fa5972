/** The JMX exporter agent's configuration and argument (the agent runs in metrics-scrape.component.test.ts). */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  checkJmxExporterPort,
  JMX_EXPORTER_CONFIGS,
  jmxExporterAgentArgFor,
  jmxExporterConfig,
} from '../src/harness/jmx-exporter.ts';
import { cassandraArgs } from '../src/harness/cassandra-config.ts';
import { kafkaServerArgs } from '../src/harness/kafka-config.ts';

describe('the JMX exporter agent', () => {
  it('binds 127.0.0.1 and reads the node’s config file', () => {
    expect(jmxExporterAgentArgFor('/cache/agent.jar', '/run/kafka', { port: 8561 })).toBe(
      '-javaagent:/cache/agent.jar=127.0.0.1:8561:/run/kafka/conf/jmx-exporter.yaml',
    );
  });

  it('queries only the MBeans its rules read, and names every metric', () => {
    for (const target of ['cassandra', 'kafka'] as const) {
      const cfg = parse(jmxExporterConfig(target)) as (typeof JMX_EXPORTER_CONFIGS)['kafka'];
      expect(cfg).toEqual(JMX_EXPORTER_CONFIGS[target]);
      expect(cfg.includeObjectNames.length).toBeLessThanOrEqual(4);
      for (const r of cfg.rules) expect(r.name).toMatch(/^(cassandra|kafka)_[a-z_]+$/);
    }
  });

  it('goes before the main class on both nodes’ command lines, and a bad port names the field', () => {
    const agent = '-javaagent:/cache/agent.jar=127.0.0.1:1:/c';
    const c = cassandraArgs({
      dir: '/run/c',
      heapMb: 512,
      jmxPort: 3,
      classpath: 'x',
      extra: [agent],
    });
    expect(c.indexOf(agent)).toBeGreaterThan(0);
    expect(c.indexOf(agent)).toBeLessThan(c.indexOf('-cp'));
    const k = kafkaServerArgs({ dir: '/run/k', heapMb: 256, classpath: 'x', jvmArgs: [agent] });
    expect(k.indexOf(agent)).toBeGreaterThan(0);
    expect(k.indexOf(agent)).toBeLessThan(k.indexOf('-cp'));
    expect(() => checkJmxExporterPort('startCassandra', { port: 0 })).toThrow(
      'startCassandra: jmxExporter.port must be an integer in [1, 65535], got 0',
    );
  });
});
