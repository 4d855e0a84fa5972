import { describe, expect, it } from 'vitest';
import { spireAgentConfig, spireServerConfig } from '../src/harness/spire.ts';
import { parseSpireVersion } from '../src/toolchain/spire.ts';

const upstream = {
  certPath: '/pki/intermediate.pem',
  keyPath: '/pki/intermediate.key',
  bundlePath: '/pki/root.pem',
};

describe('SPIRE configs (ADR 0030)', () => {
  it('server: loopback bind, SQLite, in-memory keys, join tokens, our intermediate as upstream', () => {
    const conf = spireServerConfig({
      dir: '/run/spire-server',
      trustDomain: 'trellis.test',
      port: 8081,
      upstream,
      defaultX509SvidTtl: '2m',
    });
    expect(conf).toContain('bind_address = "127.0.0.1"');
    expect(conf).toContain('bind_port = "8081"');
    expect(conf).toContain('socket_path = "/run/spire-server/api.sock"');
    expect(conf).toContain('trust_domain = "trellis.test"');
    expect(conf).toContain('default_x509_svid_ttl = "2m"');
    expect(conf).toContain('ca_ttl = "1h"');
    expect(conf).toContain('database_type = "sqlite3"');
    expect(conf).toContain('KeyManager "memory"');
    expect(conf).toContain('NodeAttestor "join_token"');
    expect(conf).toContain('cert_file_path = "/pki/intermediate.pem"');
    expect(conf).toContain('key_file_path = "/pki/intermediate.key"');
    expect(conf).toContain('bundle_file_path = "/pki/root.pem"');
  });

  it('server: a bad value is refused, naming the field', () => {
    const base = { dir: '/d', trustDomain: 'trellis.test', port: 8081, upstream };
    expect(() => spireServerConfig({ ...base, trustDomain: 'Trellis Test' })).toThrow(
      'trustDomain must be a SPIFFE trust domain ([a-z0-9._-]), got "Trellis Test"',
    );
    expect(() => spireServerConfig({ ...base, port: 0 })).toThrow(
      'port must be a TCP port (1-65535), got 0',
    );
    expect(() => spireServerConfig({ ...base, defaultX509SvidTtl: '2 minutes' })).toThrow(
      'defaultX509SvidTtl must be a duration like 90s, 2m or 1h, got "2 minutes"',
    );
    expect(() =>
      spireServerConfig({ ...base, upstream: { ...upstream, keyPath: 'intermediate.key' } }),
    ).toThrow('upstream.keyPath must be an absolute path, got "intermediate.key"');
  });

  it('agent: unix workload attestor, join token, socket in a public directory', () => {
    const conf = spireAgentConfig({
      dir: '/run/spire-agent',
      trustDomain: 'trellis.test',
      serverPort: 8081,
      trustBundlePath: '/pki/root.pem',
      joinToken: '0d6e4a2c-1f7b-4c1e-9a55-3b1d2f0e9c8a',
    });
    expect(conf).toContain('socket_path = "/run/spire-agent/public/api.sock"');
    expect(conf).toContain('trust_bundle_path = "/pki/root.pem"');
    expect(conf).toContain('WorkloadAttestor "unix"');
    expect(conf).toContain('NodeAttestor "join_token"');
    expect(() =>
      spireAgentConfig({
        dir: '/d',
        trustDomain: 'trellis.test',
        serverPort: 8081,
        trustBundlePath: '/pki/root.pem',
        joinToken: 'x" }\nplugins {',
      }),
    ).toThrow('joinToken must be the token `spire-server token generate` printed');
  });

  it('parses the version SPIRE prints', () => {
    expect(parseSpireVersion('1.13.3\n')).toBe('1.13.3');
    expect(parseSpireVersion('1.13.3-dev-unk\n')).toBeNull();
  });
});
