/**
 * The environment of each Trellis service on Kubernetes, built as the type the service exports
 * (`ServiceEnvs`, services.ts): a variable the service does not read, or a required one left out, does
 * not compile. MeshService checks the values against the service's schema before deploying.
 */
import type * as pulumi from '@pulumi/pulumi';
import { identityHeaders } from '@trellis/contracts';
import type { ValidModel } from '@trellis/policy';
import type {
  CassandraEnv,
  IdentityEnv,
  KafkaEnv,
  QueueEnv,
  ServerEnv,
} from '@trellis/service-platform/env-schema';
import { consumerGroupOf, type ServiceEnvs, type ServiceName } from '../services.ts';
import type { DataplaneMode } from './common.ts';
import { dataTlsPath } from './dataTls.ts';

/** An environment type whose values may be Pulumi outputs (a bootstrap address, say). */
export type EnvInputs<E> = { [K in keyof E]: pulumi.Input<NonNullable<E[K]>> };

/**
 * The SQS FIFO order queue (AWS's WriteQueue): a service given one uses it in place of the Kafka
 * intake topic (`ORDERS_QUEUE=sqs`), with the credentials of its ServiceAccount's IRSA role.
 */
export interface SqsOrderQueue {
  /** The queue's URL (WriteQueue.url), ends in `.fifo`. */
  url: pulumi.Input<string>;
  /** The AWS region of the queue. */
  region: string;
}

/** What the platform knows about where a service runs and what it talks to. */
export interface K8sServiceContext {
  model: ValidModel;
  workload: ServiceName;
  /** The model region: also the Cassandra datacenter's name (Platform names it so). */
  region: string;
  /** Cassandra's `host:port` (Cassandra.contactPoint). */
  cassandraContactPoint: pulumi.Input<string>;
  /**
   * The name Cassandra's node certificates carry (the datacenter Service's DNS name): the driver
   * connects to node IPs, so it checks this name instead.
   */
  cassandraServerName: pulumi.Input<string>;
  /** Kafka's bootstrap `host:port` (StrimziKafka.bootstrap). */
  kafkaBootstrap: pulumi.Input<string>;
  /** How the workload's namespace joins the mesh (Platform's `dataplane`). */
  dataplane: DataplaneMode;
  /** The order queue, when it is SQS rather than the Kafka intake topic. @default the Kafka topic */
  orderQueue?: SqsOrderQueue;
}

/** What every service gets: listen address and port, identity header, data stores. */
function common(
  c: K8sServiceContext,
): EnvInputs<ServerEnv & IdentityEnv & CassandraEnv & KafkaEnv> {
  const w = c.model.workloads[c.workload];
  const port = w?.ports.find((p) => p.protocol === 'http') ?? w?.ports[0];
  if (port === undefined)
    throw new Error(`workloads.${c.workload}.ports: the service needs a port`);
  return {
    // Istio (≥ 1.10) forwards inbound traffic to the pod IP, not to localhost, and the kubelet probes
    // the pod IP: an app on the services' loopback default would be unreachable (istio.io IST0143).
    HOST: '0.0.0.0',
    PORT: String(port.port),
    IDENTITY_PAYLOAD_HEADER: identityHeaders.jwtPayload,
    // Istio's sidecar inbound always appends the mTLS peer to XFCC (APPEND_FORWARD with URI, fixed in
    // pilot's buildSidecarInboundHTTPOpts), and STRICT admits no plaintext: a request without a peer
    // did not come through the sidecar. ztunnel (ambient) sets no XFCC, so there it cannot be asked.
    IDENTITY_REQUIRE_PEER: c.dataplane === 'sidecar' ? 'true' : 'false',
    CASSANDRA_CONTACT_POINTS: c.cassandraContactPoint,
    CASSANDRA_LOCAL_DC: c.region,
    // The client certificate MeshService mounts (dataTls.ts): Cassandra maps its URI SAN to the
    // workload's role; Kafka takes `User:CN=<workload>` from it. Brokers are checked by host name.
    CASSANDRA_TLS_CA_FILE: dataTlsPath('ca'),
    CASSANDRA_TLS_CERT_FILE: dataTlsPath('cert'),
    CASSANDRA_TLS_KEY_FILE: dataTlsPath('key'),
    CASSANDRA_TLS_SERVER_NAME: c.cassandraServerName,
    KAFKA_BROKERS: c.kafkaBootstrap,
    KAFKA_CLIENT_ID: c.workload,
    KAFKA_TLS_CA_FILE: dataTlsPath('ca'),
    KAFKA_TLS_CERT_FILE: dataTlsPath('cert'),
    KAFKA_TLS_KEY_FILE: dataTlsPath('key'),
  };
}

/** The order queue's variables: none for the Kafka intake topic (the services' default). */
function queue(c: K8sServiceContext): EnvInputs<QueueEnv> {
  if (c.orderQueue === undefined) return {};
  return {
    ORDERS_QUEUE: 'sqs',
    SQS_QUEUE_URL: c.orderQueue.url,
    SQS_REGION: c.orderQueue.region,
  };
}

/** `KAFKA_GROUP_ID`: the consumer group the model gives the workload (its ACL names that group). */
function consumerGroup(c: K8sServiceContext): { KAFKA_GROUP_ID?: string } {
  const group = consumerGroupOf(c.model, c.workload);
  return group !== undefined ? { KAFKA_GROUP_ID: group } : {};
}

const builders: { [S in ServiceName]: (c: K8sServiceContext) => EnvInputs<ServiceEnvs[S]> } = {
  'orders-api': (c) => ({ ...common(c), ...queue(c) }),
  'orders-writer': (c) => ({ ...common(c), ...consumerGroup(c), ...queue(c) }),
  ledger: (c) => ({ ...common(c), ...consumerGroup(c) }),
};

/** The environment of the service that runs `c.workload`, as that service declares it. */
export function k8sServiceEnv<S extends ServiceName>(
  c: K8sServiceContext & { workload: S },
): EnvInputs<ServiceEnvs[S]> {
  return builders[c.workload](c) as EnvInputs<ServiceEnvs[S]>;
}
