import { loadConfig as loadLedgerConfig } from '@trellis/ledger/config';
import { loadConfig as loadOrdersApiConfig } from '@trellis/orders-api/config';
import { loadConfig as loadOrdersWriterConfig } from '@trellis/orders-writer/config';
import { describe, expect, it } from 'vitest';
import { withMountedDataTls } from './support/dataTls.ts';
import { dataTlsPath } from '../src/k8s/dataTls.ts';
import { containerEnvProblems } from '../src/k8s/meshService.ts';
import { k8sServiceEnv } from '../src/k8s/serviceEnv.ts';
import { loadModelFile, referenceModelPath } from '../src/model.ts';
import {
  checkServiceEnv,
  isServiceName,
  serviceEnvProblems,
  serviceEnvSchemas,
  type ServiceName,
} from '../src/services.ts';

const model = loadModelFile(referenceModelPath);
const at = {
  model,
  region: 'eu',
  cassandraContactPoint: 'trellis-eu-service.cassandra.svc.cluster.local:9042',
  cassandraServerName: 'trellis-eu-service.cassandra.svc.cluster.local',
  kafkaBootstrap: 'trellis-kafka-bootstrap.trellis-kafka.svc.cluster.local:9093',
  dataplane: 'sidecar',
} as const;
const loaders: Record<ServiceName, (env: Record<string, string>) => unknown> = {
  'orders-api': loadOrdersApiConfig,
  ledger: loadLedgerConfig,
  'orders-writer': loadOrdersWriterConfig,
};
const queue = {
  url: 'https://sqs.us-east-1.amazonaws.com/123456789012/trellis-writes-queue-1a2b3c.fifo',
  region: 'us-east-1',
};

describe('k8sServiceEnv', () => {
  it.each(['orders-api', 'ledger', 'orders-writer'] as const)(
    "builds %s's environment valid against its schema and accepted by its loader",
    (workload) => {
      const env = k8sServiceEnv({ ...at, workload }) as Record<string, string>;
      expect(serviceEnvProblems(workload, env)).toEqual([]);
      expect(() => loaders[workload](withMountedDataTls(env))).not.toThrow();
      expect(env).toMatchObject({
        HOST: '0.0.0.0',
        CASSANDRA_CONTACT_POINTS: at.cassandraContactPoint,
        CASSANDRA_LOCAL_DC: 'eu',
        KAFKA_BROKERS: at.kafkaBootstrap,
        KAFKA_CLIENT_ID: workload,
      });
    },
  );

  it("builds orders-writer's environment valid against its schema: its port, its consumer group", () => {
    const env = k8sServiceEnv({ ...at, workload: 'orders-writer' }) as Record<string, string>;
    expect(serviceEnvProblems('orders-writer', env)).toEqual([]);
    expect(env).toMatchObject({
      HOST: '0.0.0.0',
      PORT: '8082',
      KAFKA_CLIENT_ID: 'orders-writer',
      KAFKA_GROUP_ID: 'orders-writer',
      CASSANDRA_LOCAL_DC: 'eu',
    });
    // The order queue is the Kafka intake topic unless the platform gives an SQS queue.
    expect(Object.keys(env).filter((k) => /^(ORDERS_QUEUE|SQS_)/.test(k))).toEqual([]);
  });

  it('gives the SQS order queue to the two services that use it, valid against their schemas', () => {
    for (const workload of ['orders-api', 'orders-writer'] as const) {
      const env = k8sServiceEnv({ ...at, workload, orderQueue: queue }) as Record<string, string>;
      expect(serviceEnvProblems(workload, env)).toEqual([]);
      expect(env).toMatchObject({
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: queue.url,
        SQS_REGION: 'us-east-1',
      });
      // In AWS the SDK talks to SQS itself: no other endpoint.
      expect(env.SQS_ENDPOINT).toBeUndefined();
    }
    // ledger reads no queue: it gets none of the variables even when asked.
    const ledger = k8sServiceEnv({ ...at, workload: 'ledger', orderQueue: queue });
    expect(Object.keys(ledger).filter((k) => /^(ORDERS_QUEUE|SQS_)/.test(k))).toEqual([]);
  });

  it('points both data clients at the mounted client certificate', () => {
    const env = k8sServiceEnv({ ...at, workload: 'ledger' });
    for (const store of ['CASSANDRA', 'KAFKA'] as const)
      expect(env).toMatchObject({
        [`${store}_TLS_CA_FILE`]: dataTlsPath('ca'),
        [`${store}_TLS_CERT_FILE`]: dataTlsPath('cert'),
        [`${store}_TLS_KEY_FILE`]: dataTlsPath('key'),
      });
    expect(dataTlsPath('key')).toBe('/var/run/trellis/data-tls/key.pem');
    // The driver connects to node IPs: it checks the name the node certificates carry instead.
    expect(env.CASSANDRA_TLS_SERVER_NAME).toBe(at.cassandraServerName);
    // Without the files the service refuses to start, naming the variable.
    expect(() => loadLedgerConfig(env as Record<string, string>)).toThrow(
      /CASSANDRA_TLS_CA_FILE names a file that does not exist/,
    );
  });

  it('requires a mesh peer where the sidecar always sets XFCC, and only there', () => {
    expect(k8sServiceEnv({ ...at, workload: 'orders-api' }).IDENTITY_REQUIRE_PEER).toBe('true');
    expect(
      k8sServiceEnv({ ...at, workload: 'orders-api', dataplane: 'ambient' }).IDENTITY_REQUIRE_PEER,
    ).toBe('false');
  });

  it('takes the port from the model and the consumer group from its topic ACLs', () => {
    expect(k8sServiceEnv({ ...at, workload: 'orders-api' }).PORT).toBe('8080');
    expect(k8sServiceEnv({ ...at, workload: 'ledger' })).toMatchObject({
      PORT: '8081',
      KAFKA_GROUP_ID: 'ledger',
    });
  });
});

describe('service env checks', () => {
  it('knows exactly the services that export an env schema', () => {
    expect(Object.keys(serviceEnvSchemas).sort()).toEqual([
      'ledger',
      'orders-api',
      'orders-writer',
    ]);
    expect(isServiceName('orders-writer')).toBe(true);
    expect(isServiceName('ledger')).toBe(true);
    expect(isServiceName('ingress')).toBe(false);
    expect(isServiceName('toString')).toBe(false);
  });

  it('refuses the variables the k8s platform used to pass, naming each', () => {
    const old = {
      TRELLIS_REGION: 'us',
      TRELLIS_KAFKA_BOOTSTRAP: at.kafkaBootstrap,
      TRELLIS_CASSANDRA_CONTACT_POINT: at.cassandraContactPoint,
    };
    expect(() => checkServiceEnv('services.ledger', 'ledger', old)).toThrow(
      [
        'services.ledger: env of ledger is invalid:',
        'CASSANDRA_CONTACT_POINTS is required but not set',
        'KAFKA_BROKERS is required but not set',
        'TRELLIS_REGION is not a variable this service reads',
        'TRELLIS_KAFKA_BOOTSTRAP is not a variable this service reads',
        'TRELLIS_CASSANDRA_CONTACT_POINT is not a variable this service reads',
      ].join('\n'),
    );
  });

  it('counts variables from Secrets as set, but only when the service declares them', () => {
    const schema = serviceEnvSchemas['orders-api'];
    const plain = { KAFKA_BROKERS: at.kafkaBootstrap };
    expect(containerEnvProblems(schema, plain, ['CASSANDRA_CONTACT_POINTS'])).toEqual([]);
    expect(
      containerEnvProblems(schema, plain, ['CASSANDRA_CONTACT_POINTS', 'DB_PASSWORD']),
    ).toEqual([{ variable: 'DB_PASSWORD', problem: 'is not a variable this service reads' }]);
    expect(containerEnvProblems(schema, plain, [])).toEqual([
      { variable: 'CASSANDRA_CONTACT_POINTS', problem: 'is required but not set' },
    ]);
  });
});
