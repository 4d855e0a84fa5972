import { describe, expect, it } from 'vitest';
import { peerNativePort } from '../src/cassandra.ts';
import { cassandraFromEnv } from '../src/config.ts';
import { ConfigError, Env } from '../src/env.ts';
import type { CassandraEnv } from '../src/env-schema.ts';

const fromEnv = (vars: Record<string, string>) => cassandraFromEnv(new Env<CassandraEnv>(vars));

describe('Cassandra contact points and the native port of the peers the driver learns', () => {
  it("gives the driver the contact points' port for the peers it learns from system.peers", () => {
    const opts = fromEnv({
      CASSANDRA_CONTACT_POINTS: '127.0.0.1:42817,127.0.0.2:42817,127.0.0.3:42817',
    });
    expect(opts.contactPoints).toHaveLength(3);
    expect(peerNativePort(opts.contactPoints)).toBe(42817);
    expect(peerNativePort(['[::1]:9142'])).toBe(9142);
  });

  it('refuses contact points on different native ports, naming the variable and the ports', () => {
    expect(() => fromEnv({ CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042,127.0.0.2:9043' })).toThrow(
      ConfigError,
    );
    expect(() => fromEnv({ CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042,127.0.0.2:9043' })).toThrow(
      /CASSANDRA_CONTACT_POINTS names 2 native ports \(9042, 9043\)/,
    );
  });

  it('lets a translated address (the sidecar) take contact points on any port', () => {
    const opts = fromEnv({
      CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042,127.0.0.2:9043',
      CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:15001',
    });
    expect(opts.translateTo).toBe('127.0.0.1:15001');
  });
});
