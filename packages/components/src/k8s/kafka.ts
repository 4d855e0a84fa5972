import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { KAFKA_AUTHORIZER_LOGGING } from '@trellis/local/harness';
import { meshNamespace, operatorRelease } from './common.ts';
import type { OperatorSource } from './common.ts';
import type { IssuerRef } from './dataTls.ts';
import { charts, kafkaVersion } from './versions.ts';

const defaults = {
  namespace: 'trellis-kafka',
  clusterName: 'trellis',
  replicas: 3,
  storageGi: 100,
  partitions: 6,
  resources: { requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } },
  tlsPort: 9093,
} as const;

/**
 * The bootstrap Service of a Strimzi cluster's TLS listener, what clients dial:
 * `<cluster>-kafka-bootstrap.<namespace>.svc.cluster.local:9093`.
 */
export function strimziBootstrap(
  namespace: string = defaults.namespace,
  clusterName: string = defaults.clusterName,
): { address: string; port: number } {
  return {
    address: `${clusterName}-kafka-bootstrap.${namespace}.svc.cluster.local`,
    port: defaults.tlsPort,
  };
}

/**
 * One ACL rule of a KafkaUser: Strimzi's AclRule (`spec.authorization.acls[]`; `type` allow|deny, default
 * allow; `host` default `*`; `operations` from Read, Write, Create, Delete, Alter, Describe,
 * ClusterAction, AlterConfigs, DescribeConfigs, IdempotentWrite, All). Strimzi API reference, "AclRule
 * schema reference".
 */
export interface KafkaAcl {
  type?: 'allow' | 'deny';
  resource: {
    type: 'topic' | 'group' | 'cluster' | 'transactionalId';
    name?: string;
    patternType?: 'literal' | 'prefix';
  };
  operations: string[];
  host?: string;
}

/** A Kafka principal: one workload identity and its ACLs, compiled from the model (compile.ts). */
export interface KafkaUserSpec {
  /** KafkaUser name = the workload (its certificate CN is the user name). */
  name: string;
  acls: KafkaAcl[];
}

/**
 * The CA of the clients' certificates, installed as Strimzi's clients CA in place of the one the
 * Cluster Operator would generate (strimzi documentation, "Installing your own CA certificates"):
 * the brokers then accept the services' cert-manager certificates on the TLS listener.
 */
export interface KafkaClientsCa {
  /** The CA certificate then its chain up to the root, PEM: Strimzi wants the whole chain. */
  certChainPem: pulumi.Input<string>;
  /** The CA's private key, PEM (secret). Strimzi requires it, though tls-external users never use it. */
  keyPem: pulumi.Input<string>;
}

/** Arguments of {@link StrimziKafka}. */
export interface StrimziKafkaArgs {
  /** Users and ACLs compiled from the model (`compileKafkaAcls`, see compile.ts). */
  users: KafkaUserSpec[];
  /** The CA that signs the users' client certificates (the services get theirs from cert-manager). */
  clientsCa: KafkaClientsCa;
  /**
   * cert-manager issuer of the TLS listener's certificate, so that clients verify brokers against the
   * same CA as their own certificate (Strimzi's cluster CA stays internal to the cluster).
   */
  listenerIssuer: IssuerRef;
  /** Topics to create: name → partitions. */
  topics: Record<string, { partitions?: number }>;
  /** Dual-role (controller + broker) nodes. @default 3 */
  replicas?: number;
  storageClassName?: string;
  /** @default 100 */
  storageGi?: number;
  /** @default "trellis-kafka" */
  namespace?: string;
  /** @default "trellis" */
  clusterName?: string;
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** Whether the operator's chart is installed here or preinstalled (common.ts). @default "install" */
  operators?: OperatorSource;
}

/**
 * Kafka 4 in KRaft mode through Strimzi: one TLS listener with TLS client authentication, `simple`
 * authorization, and KafkaUsers with ACLs from the model. The users are `tls-external`: their
 * certificates come from cert-manager (MeshService), signed by the clients CA given here, and their
 * principal is the certificate's subject, `User:CN=<KafkaUser name>`. Brokers, controllers and the
 * operator all run in the mesh; Strimzi's own TLS runs inside Istio's mTLS. Fields: strimzi packaging/examples
 * (security/tls-auth/kafka.yaml, user.yaml) and the v1 API of Strimzi 0.49+.
 */
export class StrimziKafka extends pulumi.ComponentResource {
  /** Namespace of the cluster. */
  public readonly namespace: pulumi.Output<string>;
  /** Bootstrap address of the TLS listener. */
  public readonly bootstrap: pulumi.Output<string>;
  /** Names of the KafkaUsers created. */
  public readonly users: pulumi.Output<string[]>;

  constructor(name: string, args: StrimziKafkaArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:StrimziKafka', name, {}, opts);
    const replicas = args.replicas ?? defaults.replicas;
    if (!Number.isInteger(replicas) || replicas < 3) {
      // min.insync.replicas=2 with acks=all needs three replicas to survive one broker down.
      throw new pulumi.ResourceError(
        `StrimziKafka ${name}: replicas must be at least 3, got ${replicas}`,
        this,
      );
    }
    args.users.forEach((u, i) => {
      if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(u.name)) {
        throw new pulumi.ResourceError(
          `StrimziKafka ${name}: users[${i}].name "${u.name}" is not a DNS name`,
          this,
        );
      }
      u.acls.forEach((a, j) => {
        if (a.operations.length === 0 || a.operations.includes('All')) {
          throw new pulumi.ResourceError(
            `StrimziKafka ${name}: users[${i}].acls[${j}].operations must list specific operations, not All`,
            this,
          );
        }
      });
    });
    const namespace = args.namespace ?? defaults.namespace;
    const clusterName = args.clusterName ?? defaults.clusterName;
    const dependsOn = args.dependsOn ?? [];
    const ns = meshNamespace(`${name}-ns`, namespace, 'sidecar', { parent: this, dependsOn });
    const operator = operatorRelease(
      args.operators,
      `${name}-operator`,
      charts.strimzi,
      {
        namespace: ns.metadata.name,
        releaseName: 'strimzi',
        values: {
          watchNamespaces: [],
          resources: {
            requests: { cpu: '200m', memory: '384Mi' },
            limits: { cpu: '1', memory: '384Mi' },
          },
        },
      },
      { parent: this, dependsOn: [ns] },
    );
    const labels = { 'strimzi.io/cluster': clusterName };
    const ca = clientsCaSecrets(name, clusterName, ns.metadata.name, args.clientsCa, this);
    const listenerSecret = `${clusterName}-kafka-tls-listener`;
    const listenerCert = new k8s.apiextensions.CustomResource(
      `${name}-listener-cert`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: listenerSecret, namespace: ns.metadata.name },
        spec: {
          secretName: listenerSecret,
          issuerRef: {
            group: 'cert-manager.io',
            kind: args.listenerIssuer.kind,
            name: args.listenerIssuer.name,
          },
          dnsNames: listenerDnsNames(clusterName, namespace),
          duration: '2160h',
          renewBefore: '360h',
          // PKCS#8: the form the JVM reads; Strimzi rolls the brokers when the Secret changes.
          privateKey: {
            algorithm: 'ECDSA',
            size: 256,
            encoding: 'PKCS8',
            rotationPolicy: 'Always',
          },
          usages: ['server auth', 'digital signature'],
        },
      },
      { parent: this, dependsOn: [ns] },
    );
    const pool = new k8s.apiextensions.CustomResource(
      `${name}-pool`,
      {
        apiVersion: 'kafka.strimzi.io/v1',
        kind: 'KafkaNodePool',
        metadata: { name: 'dual-role', namespace: ns.metadata.name, labels },
        spec: {
          replicas,
          roles: ['controller', 'broker'],
          resources: defaults.resources,
          storage: {
            type: 'jbod',
            volumes: [
              {
                id: 0,
                type: 'persistent-claim',
                size: `${args.storageGi ?? defaults.storageGi}Gi`,
                kraftMetadata: 'shared',
                deleteClaim: false,
                ...(args.storageClassName ? { class: args.storageClassName } : {}),
              },
            ],
          },
        },
      },
      { parent: this, dependsOn: operator },
    );
    const logging = new k8s.core.v1.ConfigMap(
      `${name}-logging`,
      {
        metadata: { name: `${clusterName}-kafka-logging`, namespace: ns.metadata.name, labels },
        data: { [kafkaLoggingKey]: strimziKafkaLog4j2() },
      },
      { parent: this, dependsOn: [ns] },
    );
    const kafka = new k8s.apiextensions.CustomResource(
      `${name}-cluster`,
      {
        apiVersion: 'kafka.strimzi.io/v1',
        kind: 'Kafka',
        metadata: { name: clusterName, namespace: ns.metadata.name },
        spec: {
          kafka: {
            version: kafkaVersion,
            listeners: [
              {
                name: 'tls',
                port: defaults.tlsPort,
                type: 'internal',
                tls: true,
                authentication: { type: 'tls' },
                configuration: {
                  brokerCertChainAndKey: {
                    secretName: listenerSecret,
                    certificate: 'tls.crt',
                    key: 'tls.key',
                  },
                },
              },
            ],
            authorization: { type: 'simple' },
            // The authorizer's decisions into their own appender (strimziKafkaLog4j2).
            logging: {
              type: 'external',
              valueFrom: {
                configMapKeyRef: { name: logging.metadata.name, key: kafkaLoggingKey },
              },
            },
            config: {
              'offsets.topic.replication.factor': 3,
              'transaction.state.log.replication.factor': 3,
              'transaction.state.log.min.isr': 2,
              'default.replication.factor': 3,
              'min.insync.replicas': 2,
              'auto.create.topics.enable': false,
            },
          },
          clientsCa: { generateCertificateAuthority: false },
          entityOperator: { topicOperator: {}, userOperator: {} },
        },
      },
      { parent: this, dependsOn: [pool, listenerCert, logging, ...ca] },
    );
    for (const [topic, t] of Object.entries(args.topics)) {
      new k8s.apiextensions.CustomResource(
        `${name}-topic-${topic.replace(/[^a-z0-9-]/g, '-')}`,
        {
          apiVersion: 'kafka.strimzi.io/v1',
          kind: 'KafkaTopic',
          metadata: {
            name: topic.replace(/[^a-z0-9.-]/g, '-'),
            namespace: ns.metadata.name,
            labels,
          },
          spec: {
            topicName: topic,
            partitions: t.partitions ?? defaults.partitions,
            replicas: 3,
            config: { 'min.insync.replicas': 2 },
          },
        },
        { parent: this, dependsOn: [kafka] },
      );
    }
    for (const user of args.users) {
      new k8s.apiextensions.CustomResource(
        `${name}-user-${user.name}`,
        {
          apiVersion: 'kafka.strimzi.io/v1',
          kind: 'KafkaUser',
          metadata: { name: user.name, namespace: ns.metadata.name, labels },
          spec: {
            // The certificate is the service's own (MeshService), not one the User Operator issues.
            authentication: { type: 'tls-external' },
            authorization: {
              type: 'simple',
              acls: user.acls.map((a) => ({ host: '*', ...a })),
            },
          },
        },
        { parent: this, dependsOn: [kafka] },
      );
    }
    this.namespace = ns.metadata.name;
    const bootstrap = strimziBootstrap(namespace, clusterName);
    this.bootstrap = pulumi.output(`${bootstrap.address}:${bootstrap.port}`);
    this.users = pulumi.output(args.users.map((u) => u.name));
    this.registerOutputs({
      namespace: this.namespace,
      bootstrap: this.bootstrap,
      users: this.users,
    });
  }
}

/**
 * Host names a client may reach the TLS listener by (Strimzi documentation, "SAN certificates for
 * Kafka listeners"): the bootstrap Service and every broker pod behind the headless Service, short and
 * qualified.
 */
export function listenerDnsNames(clusterName: string, namespace: string): string[] {
  return [`${clusterName}-kafka-bootstrap`, `*.${clusterName}-kafka-brokers`].flatMap((h) => [
    h,
    `${h}.${namespace}.svc`,
    `${h}.${namespace}.svc.cluster.local`,
  ]);
}

/**
 * Strimzi's clients CA Secrets, holding the CA given instead of a generated one: `<cluster>-clients-ca-cert`
 * (`ca.crt`) and `<cluster>-clients-ca` (`ca.key`), labelled for the cluster and at generation 0
 * (strimzi documentation, "Installing your own CA certificates"). A new CA needs the next generation
 * ("Renewing your own CA certificates").
 */
function clientsCaSecrets(
  name: string,
  clusterName: string,
  namespace: pulumi.Input<string>,
  ca: KafkaClientsCa,
  parent: pulumi.Resource,
): k8s.core.v1.Secret[] {
  const labels = { 'strimzi.io/kind': 'Kafka', 'strimzi.io/cluster': clusterName };
  const cert = new k8s.core.v1.Secret(
    `${name}-clients-ca-cert`,
    {
      metadata: {
        name: `${clusterName}-clients-ca-cert`,
        namespace,
        labels,
        annotations: { 'strimzi.io/ca-cert-generation': '0' },
      },
      type: 'Opaque',
      stringData: { 'ca.crt': ca.certChainPem },
    },
    { parent },
  );
  const key = new k8s.core.v1.Secret(
    `${name}-clients-ca`,
    {
      metadata: {
        name: `${clusterName}-clients-ca`,
        namespace,
        labels,
        annotations: { 'strimzi.io/ca-key-generation': '0' },
      },
      type: 'Opaque',
      stringData: pulumi.secret(pulumi.output(ca.keyPem).apply((k) => ({ 'ca.key': k }))),
    },
    { parent },
  );
  return [cert, key];
}

/** The key of the brokers' log4j2 file in its ConfigMap. */
const kafkaLoggingKey = 'log4j2.properties';

/**
 * The brokers' log4j2 config (Strimzi's `external` logging: Kafka 4 logs with log4j2, and only a whole
 * file can add an appender; `inline` logging sets levels only): Strimzi's default broker logging
 * (cluster-operator default-logging/KafkaCluster.properties: INFO to stdout, the request logger and
 * RequestChannel at WARN), except that `kafka.authorizer.logger` runs at DEBUG, as in the local stack,
 * into an appender of its own. Kafka 4's StandardAuthorizer logs a denial at INFO and an allowed
 * produce, fetch or group read at DEBUG, so DEBUG keeps the allowed operations the audit trail needs.
 * The pod's only collected stream is stdout, so the appender is a console too, with the local authorizer
 * log's layout (UTC ISO time, level, message: what `./trellis audit` parses) in place of Strimzi's, and
 * `additivity = false`: each decision is logged once, in that layout.
 */
export function strimziKafkaLog4j2(): string {
  const a = KAFKA_AUTHORIZER_LOGGING;
  const lines = [
    'name = TrellisKafkaConfig',
    'appender.console.type = Console',
    'appender.console.name = STDOUT',
    'appender.console.layout.type = PatternLayout',
    'appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} %-5p [%t] %c{1}:%L - %m%n',
    'appender.authorizer.type = Console',
    'appender.authorizer.name = AUTHORIZER',
    'appender.authorizer.layout.type = PatternLayout',
    `appender.authorizer.layout.pattern = ${a.pattern}`,
    'rootLogger.level = INFO',
    'rootLogger.appenderRefs = console',
    'rootLogger.appenderRef.console.ref = STDOUT',
    ...[
      ['requestlogger', 'kafka.request.logger'],
      ['requestchannel', 'kafka.network.RequestChannel$'],
    ].flatMap(([id, logger]) => [`logger.${id}.name = ${logger}`, `logger.${id}.level = WARN`]),
    `logger.authorizer.name = ${a.logger}`,
    `logger.authorizer.level = ${a.level}`,
    'logger.authorizer.appenderRefs = authorizer',
    'logger.authorizer.appenderRef.authorizer.ref = AUTHORIZER',
    'logger.authorizer.additivity = false',
  ];
  return `${lines.join('\n')}\n`;
}
