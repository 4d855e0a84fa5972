import { describe, expect, it } from 'vitest';
import {
  clusterReplication,
  evenTokens,
  parseNodetoolStatus,
  startCassandraCluster,
} from '../src/harness/cassandra-cluster.ts';
import { cassandraConfig } from '../src/harness/cassandra-config.ts';

describe('cassandra cluster config', () => {
  it('spaces the tokens evenly over the Murmur3 ring, the first at 0', () => {
    expect(evenTokens(3)).toEqual(['0', '6148914691236517205', '-6148914691236517206']);
    expect(evenTokens(1)).toEqual(['0']);
    expect(() => evenTokens(0)).toThrow('evenTokens: n must be an integer in [1, 256], got 0');
  });

  it('renders a member node: its address, the seed, its token, the internode authenticator', () => {
    const cfg = cassandraConfig(
      {
        dir: '/d',
        address: '127.0.0.2',
        seeds: ['127.0.0.1'],
        initialToken: '6148914691236517205',
        autoBootstrap: true,
        internodeTls: { keystore: '/k.pem', truststore: '/t.pem' },
        internodeAuthenticator: {
          className: 'org.apache.cassandra.auth.MutualTlsInternodeAuthenticator',
          parameters: {
            validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator',
            trusted_peer_identities: 'spiffe://t/ns/data/sa/cassandra',
          },
        },
      },
      '127.0.0.2',
      { nativePort: 9042, storagePort: 7000 },
    );
    expect(cfg).toMatchObject({
      listen_address: '127.0.0.2',
      rpc_address: '127.0.0.2',
      initial_token: '6148914691236517205',
      auto_bootstrap: true,
      seed_provider: [{ parameters: [{ seeds: '127.0.0.1:7000' }] }],
      internode_authenticator: {
        class_name: 'org.apache.cassandra.auth.MutualTlsInternodeAuthenticator',
        parameters: { trusted_peer_identities: 'spiffe://t/ns/data/sa/cassandra' },
      },
      server_encryption_options: { internode_encryption: 'all', require_client_auth: true },
    });
  });

  it('leaves a single node as it was: its own seed, token 0, no auto_bootstrap key', () => {
    const cfg = cassandraConfig({ dir: '/d' }, '127.0.0.1', { nativePort: 1, storagePort: 2 });
    expect(cfg).toMatchObject({
      initial_token: '0',
      seed_provider: [{ parameters: [{ seeds: '127.0.0.1:2' }] }],
    });
    expect(cfg).not.toHaveProperty('auto_bootstrap');
    expect(cfg).not.toHaveProperty('internode_authenticator');
  });

  it('refuses an internode authenticator without internode client certificates', () => {
    expect(() =>
      cassandraConfig({ dir: '/d', internodeAuthenticator: 'X' }, '127.0.0.1', {
        nativePort: 1,
        storagePort: 2,
      }),
    ).toThrow('cassandra: internodeAuthenticator needs internodeTls with requireClientAuth');
  });

  it('replicates with NetworkTopologyStrategy in the one local datacenter', () => {
    expect(clusterReplication(3)).toBe("{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}");
  });

  it('parses nodetool status into address → state', () => {
    const out = `Datacenter: datacenter1
=======================
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address    Load        Tokens  Owns (effective)  Host ID                               Rack
UN  127.0.0.1  120.5 KiB   1       100.0%            8d3c…                                 rack1
DN  127.0.0.3  98.1 KiB    1       100.0%            5e1a…                                 rack1
UJ  127.0.0.2  70 KiB      1       ?                 77aa…                                 rack1
`;
    expect(Object.fromEntries(parseNodetoolStatus(out))).toEqual({
      '127.0.0.1': 'UN',
      '127.0.0.3': 'DN',
      '127.0.0.2': 'UJ',
    });
  });

  it('names the field it refuses before starting anything', async () => {
    const node = {
      identity: 'spiffe://t/ns/data/sa/cassandra',
      tls: { keystore: 'k', truststore: 't' },
    };
    const base = {
      dir: '/nowhere',
      bootstrapSuperuser: { role: 'admin', identity: 'spiffe://t/ns/p/sa/admin' },
      admin: { cert: 'c' },
    };
    await expect(startCassandraCluster({ ...base, nodes: [node] })).rejects.toThrow(
      'startCassandraCluster: nodes must list 2 to 3 nodes, got 1',
    );
    await expect(
      startCassandraCluster({ ...base, nodes: [node, { ...node, identity: 'cassandra-2' }] }),
    ).rejects.toThrow('startCassandraCluster: nodes[1].identity must be a SPIFFE ID');
    await expect(
      startCassandraCluster({
        ...base,
        nodes: [node, { ...node, tls: { ...node.tls, requireClientAuth: false } }],
      }),
    ).rejects.toThrow('startCassandraCluster: nodes[1].tls.requireClientAuth must stay true');
  });
});
