import { describe, expect, it } from 'vitest';
import {
  cassandraArgs,
  cassandraConfig,
  PEM_SSL_CONTEXT_FACTORY,
} from '../src/harness/cassandra-config.ts';
import {
  kafkaAuthorizerProperties,
  kafkaProperties,
  newClusterId,
  renderProperties,
} from '../src/harness/kafka-config.ts';
import { CASSANDRA_JVM_OPTIONS } from '../src/toolchain/cassandra.ts';
import { parseReleaseFile } from '../src/toolchain/java.ts';

const ports = { nativePort: 19042, storagePort: 17000 };
const pem = { keystore: '/k/node.keystore.pem', truststore: '/k/ca.pem' };

describe('cassandraConfig', () => {
  it('turns on CQL TLS, not optional, with client certificates and the PEM factory', () => {
    const cfg = cassandraConfig({ dir: '/d', clientTls: pem }, '127.0.0.1', ports);
    expect(cfg.client_encryption_options).toEqual({
      enabled: true,
      optional: false,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
      keystore: pem.keystore,
      truststore: pem.truststore,
      require_client_auth: true,
    });
    expect(cfg.server_encryption_options).toBeUndefined();
  });

  it('turns on internode TLS for all traffic with client auth and endpoint verification', () => {
    const cfg = cassandraConfig({ dir: '/d', internodeTls: pem }, '127.0.0.1', ports);
    expect(cfg.server_encryption_options).toMatchObject({
      internode_encryption: 'all',
      optional: false,
      require_client_auth: true,
      require_endpoint_verification: true,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
    });
  });

  it('in a pod: CQL on the pod address, storage and seeds on its loopback', () => {
    const cfg = cassandraConfig({ dir: '/d', rpcAddress: '198.18.8.22' }, '127.0.0.1', ports);
    expect(cfg).toMatchObject({ listen_address: '127.0.0.1', rpc_address: '198.18.8.22' });
    expect(JSON.stringify(cfg.seed_provider)).toContain('"seeds":"127.0.0.1:17000"');
  });

  it('binds loopback ports, one token, explicit commitlog sync, and its own directories', () => {
    const cfg = cassandraConfig({ dir: '/d' }, '127.0.0.1', ports);
    expect(cfg).toMatchObject({
      listen_address: '127.0.0.1',
      rpc_address: '127.0.0.1',
      native_transport_port: 19042,
      storage_port: 17000,
      num_tokens: 1,
      commitlog_sync: 'periodic',
      commitlog_directory: '/d/data/commitlog',
      data_file_directories: ['/d/data/data'],
      authenticator: 'AllowAllAuthenticator',
    });
    expect(cfg.client_encryption_options).toBeUndefined();
  });

  it('takes an authenticator with parameters and extra yaml last', () => {
    const cfg = cassandraConfig(
      {
        dir: '/d',
        authenticator: {
          className: 'org.apache.cassandra.auth.MutualTlsAuthenticator',
          parameters: {
            validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator',
          },
        },
        yaml: { concurrent_reads: 2 },
      },
      '127.0.0.1',
      ports,
    );
    expect(cfg.authenticator).toEqual({
      class_name: 'org.apache.cassandra.auth.MutualTlsAuthenticator',
      parameters: { validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator' },
    });
    expect(cfg.concurrent_reads).toBe(2);
    expect(() => cassandraConfig({ dir: '/d', authorizer: 'x; rm -rf' }, 'h', ports)).toThrow(
      /bad class name/,
    );
  });

  it('runs CassandraDaemon with the JDK 17 module flags and its own config', () => {
    const args = cassandraArgs({ dir: '/d', heapMb: 512, jmxPort: 7199, classpath: '/lib/*' });
    expect(args.at(-1)).toBe('org.apache.cassandra.service.CassandraDaemon');
    expect(args).toEqual(expect.arrayContaining([...CASSANDRA_JVM_OPTIONS, '-Xmx512m']));
    expect(args).toContain('--add-opens=java.base/sun.nio.ch=ALL-UNNAMED');
    expect(args).toContain('-Dcassandra.config=file:///d/conf/cassandra.yaml');
    expect(args).toContain('-Dcassandra.skip_wait_for_gossip_to_settle=0');
  });
});

describe('kafkaProperties', () => {
  const kp = { port: 9092, brokerPort: 9093, controllerPort: 9094 };

  it('puts every listener on SSL with client certificates required and PEM stores', () => {
    const p = kafkaProperties({ dir: '/d', tls: pem }, '127.0.0.1', kp);
    expect(p['listener.security.protocol.map']).toBe('CLIENT:SSL,BROKER:SSL,CONTROLLER:SSL');
    expect(p['ssl.client.auth']).toBe('required');
    expect(p['ssl.keystore.type']).toBe('PEM');
    expect(p['ssl.truststore.type']).toBe('PEM');
    expect(p['ssl.keystore.location']).toBe(pem.keystore);
    expect(p['ssl.endpoint.identification.algorithm']).toBe('https');
    expect(p['controller.quorum.voters']).toBe('1@127.0.0.1:9094');
    expect(p['process.roles']).toBe('broker,controller');
    expect(p['inter.broker.listener.name']).toBe('BROKER');
  });

  it('is PLAINTEXT without tls, and extra properties win', () => {
    const p = kafkaProperties(
      { dir: '/d', properties: { 'num.partitions': '3' } },
      '127.0.0.1',
      kp,
    );
    expect(p['listener.security.protocol.map']).toBe(
      'CLIENT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
    );
    expect(p['ssl.client.auth']).toBeUndefined();
    expect(p['num.partitions']).toBe('3');
  });

  it('renders a cluster member: every voter, RF and min ISR for the cluster', () => {
    const voters = [1, 2, 3].map((id) => ({ id, host: `127.0.0.${id}`, controllerPort: 9094 }));
    const p = kafkaProperties(
      { dir: '/d', tls: pem, cluster: { nodeId: 2, voters } },
      '127.0.0.2',
      kp,
    );
    expect(p['node.id']).toBe('2');
    expect(p['controller.quorum.voters']).toBe(
      '1@127.0.0.1:9094,2@127.0.0.2:9094,3@127.0.0.3:9094',
    );
    expect(p['listeners']).toBe(
      'CLIENT://127.0.0.2:9092,BROKER://127.0.0.2:9093,CONTROLLER://127.0.0.2:9094',
    );
    expect(p['default.replication.factor']).toBe('3');
    expect(p['offsets.topic.replication.factor']).toBe('3');
    expect(p['transaction.state.log.replication.factor']).toBe('3');
    expect(p['min.insync.replicas']).toBe('2');
    expect(p['transaction.state.log.min.isr']).toBe('2');
    // A single node keeps RF 1 and no cluster-wide replication defaults.
    const single = kafkaProperties({ dir: '/d', tls: pem }, '127.0.0.1', kp);
    expect(single['offsets.topic.replication.factor']).toBe('1');
    expect(single['min.insync.replicas']).toBeUndefined();
  });

  it('refuses a cluster membership that cannot work, naming the field', () => {
    const voters = [1, 2, 3].map((id) => ({ id, host: `127.0.0.${id}`, controllerPort: 9094 }));
    const at =
      (cluster: Parameters<typeof kafkaProperties>[0]['cluster'], host = '127.0.0.1') =>
      () =>
        kafkaProperties({ dir: '/d', cluster }, host, kp);
    expect(at({ nodeId: 4, voters })).toThrow(
      'kafka: cluster.nodeId 4 is not one of cluster.voters',
    );
    expect(at({ nodeId: 2, voters })).toThrow(
      /cluster.voters\[2\] is 127.0.0.2:9094, but this node/,
    );
    expect(at({ nodeId: 1, voters, replicationFactor: 4 })).toThrow(
      'kafka: cluster.replicationFactor must be an integer in [1, 3] (the nodes), got 4',
    );
    expect(at({ nodeId: 1, voters, minInsyncReplicas: 4 })).toThrow(
      'kafka: cluster.minInsyncReplicas must be an integer in [1, 3] (the replication factor), got 4',
    );
    expect(
      at({ nodeId: 1, voters: [...voters, { id: 1, host: '127.0.0.1', controllerPort: 1 }] }),
    ).toThrow('kafka: cluster.voters: id 1 is listed twice');
    expect(
      at({ nodeId: 1, voters: [{ id: 1, host: '10.0.0.1', controllerPort: 9094 }] }, '10.0.0.1'),
    ).toThrow(
      'kafka: cluster.voters[1].host must be a loopback address (127.0.0.0/8), got 10.0.0.1',
    );
  });

  it('lets pod nodes name their peers by pod address, and still refuses a voter that is no address', () => {
    const pod = { netns: 'trellis.kpart.kafka-1', uid: 1, gid: 1 };
    const voters = [1, 2, 3].map((id) => ({
      id,
      host: `198.18.47.${id + 1}`,
      controllerPort: 9094,
    }));
    const p = kafkaProperties(
      { dir: '/d', pod, cluster: { nodeId: 1, voters } },
      '198.18.47.2',
      kp,
    );
    expect(p['controller.quorum.voters']).toBe(
      '1@198.18.47.2:9094,2@198.18.47.3:9094,3@198.18.47.4:9094',
    );
    const bad = [{ id: 1, host: 'kafka-1.example', controllerPort: 9094 }];
    expect(() =>
      kafkaProperties(
        { dir: '/d', pod, cluster: { nodeId: 1, voters: bad } },
        'kafka-1.example',
        kp,
      ),
    ).toThrow('kafka: cluster.voters[1].host must be an IPv4 address, got kafka-1.example');
  });

  it('makes the nodes, and only the given principals, super users behind the StandardAuthorizer', () => {
    expect(kafkaAuthorizerProperties(['User:spiffe://t/a', 'User:spiffe://t/b'])).toEqual({
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'allow.everyone.if.no.acl.found': 'false',
      'super.users': 'User:spiffe://t/a;User:spiffe://t/b',
    });
    expect(() => kafkaAuthorizerProperties([])).toThrow('kafka: superUsers must name at least one');
    expect(() => kafkaAuthorizerProperties(['User:a;User:b'])).toThrow(
      /must be User:<name> without ';'/,
    );
  });

  it('renders properties and refuses values that would break the file', () => {
    expect(renderProperties({ 'a.b': 'c' })).toContain('\na.b=c\n');
    expect(() => renderProperties({ 'a.b': 'c\nsuper.users=User:x' })).toThrow(/a.b has a newline/);
    expect(() => renderProperties({ 'a b': 'c' })).toThrow(/bad property name/);
  });

  it('makes cluster ids Kafka accepts: 22 URL-safe base64 characters', () => {
    for (let i = 0; i < 200; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});

describe('parseReleaseFile', () => {
  it('reads modern and legacy version strings', () => {
    expect(parseReleaseFile('IMPLEMENTOR="Debian"\nJAVA_VERSION="17.0.15"\n')).toEqual({
      version: '17.0.15',
      major: 17,
    });
    expect(parseReleaseFile('JAVA_VERSION="25.0.3"')?.major).toBe(25);
    expect(parseReleaseFile('JAVA_VERSION="1.8.0_392"')?.major).toBe(8);
    expect(parseReleaseFile('nothing here')).toBeNull();
  });
});
