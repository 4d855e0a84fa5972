import * as pulumi from '@pulumi/pulumi';
import { basename, join } from 'node:path';
import {
  jmxExporterAgentArg,
  jmxExporterConfig,
  jmxExporterConfigFile,
  KAFKA_LOG4J2,
  kafkaClasspath,
  kafkaJava,
  kafkaProperties,
  kafkaServerArgs,
  renderProperties,
  type KafkaListener,
} from '@trellis/local/harness';
import {
  compileKafkaAcls,
  dataServiceSpiffeId,
  spiffeId,
  type KafkaAclBinding,
  type BoundModel,
  type ValidModel,
} from '@trellis/policy';
import type { ClientIdentity } from './cassandra.ts';
import type {
  AclsInputs,
  AclsOutputs,
  AdminConnection,
  CertReloadInputs,
  CertReloadOutputs,
  StorageInputs,
  StorageOutputs,
  TopicSpec,
  TopicsInputs,
  TopicsOutputs,
} from './kafka-impl.ts';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { POD_WORK_DIR } from './process-impl.ts';
import { LocalProcess } from './process.ts';
import { LocalRelay } from './relay.ts';
import { checkExporterPort, serverPlacement, type ServerPod } from './server-pod.ts';

// Captured by the serialized providers instead of module objects (see process.ts).
const IMPL = new URL('./kafka-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./kafka-impl.ts');

const storageProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: StorageOutputs, news: StorageInputs) {
    // Format once per data dir; later config changes are the broker's (its LocalProcess restarts).
    return { changes: olds.dir !== news.dir, replaces: [] };
  },
  async create(inputs: StorageInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.dir, outs: await impl.format(inputs) };
  },
  async update(_id: string, olds: StorageOutputs, news: StorageInputs) {
    throw new Error(
      `kafka storage: ${olds.dir} is formatted for cluster ${olds.clusterId}; moving it to ${news.dir} ` +
        'needs a fresh stack (pulumi destroy, then up)',
    );
  },
  async read(id: string, props: StorageOutputs) {
    const impl = (await import(IMPL)) as Impl;
    return impl.storageExists(props) ? { id, props } : { id: '', props: {} };
  },
  async delete() {
    // Nothing to undo: the storage lives in the broker's dir, which its LocalProcess purges.
  },
};

/** `kafka-storage format` of a KRaft node's data dir, once, at create. */
class KafkaStorage extends pulumi.dynamic.Resource {
  declare public readonly clusterId: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      dir: string;
      properties: pulumi.Input<string>;
      classpath: pulumi.Input<string>;
      owner?: pulumi.Input<{ uid: number; gid: number }>;
    },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      storageProvider,
      name,
      { ...args, clusterId: undefined, formatMs: undefined },
      opts,
      'trellis-local',
      'KafkaStorage',
    );
  }
}

const topicsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: TopicsOutputs, news: TopicsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { changes: impl.topicsKey(olds.topics) !== impl.topicsKey(news.topics), replaces: [] };
  },
  async create(inputs: TopicsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.admin.bootstrap, outs: await impl.ensureTopics(inputs) };
  },
  async update(_id: string, _olds: TopicsOutputs, news: TopicsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.ensureTopics(news) };
  },
  async read(id: string, props: TopicsOutputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id, props: await impl.observeTopics(props) };
  },
  async delete() {
    // Topics live in the broker's data dir, purged with the broker.
  },
};

/** The model's (literal) topics, created as platform-admin. */
export class KafkaTopics extends pulumi.dynamic.Resource {
  declare public readonly topics: pulumi.Output<TopicSpec[]>;

  constructor(
    name: string,
    args: { admin: pulumi.Input<AdminConnection>; topics: TopicSpec[] },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(topicsProvider, name, args, opts, 'trellis-local', 'KafkaTopics');
  }
}

const aclsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: AclsOutputs, news: AclsInputs) {
    const impl = (await import(IMPL)) as Impl;
    // The ACL set is the diff: order and duplicates do not matter, connection details neither.
    return { changes: impl.aclsKey(olds.acls) !== impl.aclsKey(news.acls), replaces: [] };
  },
  async create(inputs: AclsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.admin.bootstrap, outs: await impl.createAcls(inputs) };
  },
  async update(_id: string, olds: AclsOutputs, news: AclsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.updateAcls(olds, news) };
  },
  async read(id: string, props: AclsOutputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id, props: await impl.observeAcls(props) };
  },
  async delete() {
    // ACLs live in the KRaft metadata log in the broker's data dir, purged with the broker.
  },
};

/** ACL bindings from `compileKafkaAcls`, applied as platform-admin with the Admin API. */
export class KafkaAcls extends pulumi.dynamic.Resource {
  declare public readonly acls: pulumi.Output<KafkaAclBinding[]>;

  constructor(
    name: string,
    args: { admin: pulumi.Input<AdminConnection>; acls: KafkaAclBinding[] },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(aclsProvider, name, args, opts, 'trellis-local', 'KafkaAcls');
  }
}

const certReloadProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: CertReloadOutputs, news: CertReloadInputs) {
    return {
      changes:
        olds.trigger !== news.trigger ||
        olds.keystore !== news.keystore ||
        olds.listeners.join(',') !== news.listeners.join(','),
      replaces: [],
    };
  },
  async create(inputs: CertReloadInputs) {
    const impl = (await import(IMPL)) as Impl;
    // A broker that just started read these files already; one that was running (a stack from
    // before this resource) takes them now.
    return { id: inputs.admin.bootstrap, outs: await impl.reloadCerts(inputs) };
  },
  async update(_id: string, _olds: CertReloadOutputs, news: CertReloadInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.reloadCerts(news) };
  },
  async delete() {
    // Nothing to undo: the reload leaves no per-broker config behind.
  },
};

/**
 * Makes the running broker present its renewed certificate when `trigger` changes, by dynamic
 * listener reconfiguration (KIP-226, ADR 0029): no restart.
 */
export class KafkaCertReload extends pulumi.dynamic.Resource {
  declare public readonly serial: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      admin: pulumi.Input<AdminConnection>;
      keystore: pulumi.Input<string>;
      listeners: string[];
      trigger: pulumi.Input<string>;
    },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      certReloadProvider,
      name,
      { ...args, serial: undefined, ms: undefined },
      opts,
      'trellis-local',
      'KafkaCertReload',
    );
  }
}

/** One client workload's own listener, dialled by its sidecar. */
export interface KafkaWorkloadListener {
  workload: string;
  /** The broker's port for this workload (TLS, client certificate required). */
  port: number;
  /** `host:port` advertised in metadata on this listener: the workload's sidecar egress address. */
  advertised: string;
  /**
   * Its sidecar runs on the host and dials the listener at 127.0.0.1: for a broker in a pod, the
   * host's relay then carries this port too. @default false
   */
  fromHost?: boolean;
}

/** Inputs of a {@link LocalKafka}. */
export interface LocalKafkaArgs {
  /** The policy model: topics and ACLs. */
  model: BoundModel;
  /** Issues the broker's certificate; its root is the trust bundle for every listener. */
  ca: LocalMeshCa;
  /** The broker's directory: config, data, logs (a LocalProcess dir, purged on destroy). */
  dir: string;
  /** Directory of the broker's certificate files. */
  certDir: string;
  /** The identity that is a super user and applies topics and ACLs (platform-admin). */
  admin: ClientIdentity;
  /** Loopback ports: the direct client listener, inter-broker, controller. */
  ports: { direct: number; broker: number; controller: number };
  /** One listener per client workload, advertised as that workload's sidecar egress address. */
  workloadListeners?: KafkaWorkloadListener[];
  /** @default 384 */
  heapMb?: number;
  /** Partitions of each topic the model names. @default 1 */
  partitions?: number;
  /** Certificate lifetime. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the broker's certificate. @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 180_000 */
  readyTimeoutMs?: number;
  /**
   * Run the broker in this pod, as its user (ADR 0012): its client listeners (the direct one and
   * each workload's) bind the pod's address, the controller and inter-broker listeners the pod's
   * own loopback; its files (`<dir>/pod`) and key are that user's. Host clients keep
   * 127.0.0.1:`direct` (and host workloads their listeners) through a {@link LocalRelay}, which
   * the direct listener advertises. @default on the host
   */
  pod?: ServerPod;
  /**
   * Run the Prometheus JMX exporter agent in the broker's JVM (ADR 0020), its HTTP server on the
   * broker's own 127.0.0.1 at `port` (in a pod, the pod's loopback): only a metrics front in the
   * same pod reaches it. @default none
   */
  jmxExporter?: { port: number };
}

const defaults = { heapMb: 384, partitions: 1, certValidHours: 24, readyTimeoutMs: 180_000 };

/** StandardAuthorizer: the KRaft authorizer, ACLs kept in the metadata log. */
export const STANDARD_AUTHORIZER = 'org.apache.kafka.metadata.authorizer.StandardAuthorizer';

/** The listener name of a workload's own listener: `CLIENT_<WORKLOAD>`. */
export function workloadListenerName(workload: string): string {
  return `CLIENT_${workload.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * The principal a workload gets from the SPIFFE principal builder: `User:<SPIFFE ID>`
 * (docs/adr/0006-kafka-spiffe-principals.md).
 */
export function kafkaPrincipal(model: ValidModel, workload: string): string {
  return `User:${spiffeId(model, workload)}`;
}

/** The authorization settings of the broker (all listeners), for a model. */
export function kafkaAuthProperties(
  model: ValidModel,
  adminSpiffeId: string,
): Record<string, string> {
  return {
    'authorizer.class.name': STANDARD_AUTHORIZER,
    'allow.everyone.if.no.acl.found': 'false',
    // The broker's own identity (inter-broker and controller connections) and platform-admin.
    'super.users': `User:${dataServiceSpiffeId(model, 'kafka')};User:${adminSpiffeId}`,
  };
}

/**
 * Kafka 4 on one machine, as real processes and Pulumi resources: a KRaft combined node with SSL and
 * client certificates required on every listener (controller, inter-broker, clients), principals
 * `User:<SPIFFE ID>` from the SVID's URI SAN, StandardAuthorizer with no access without an ACL, the
 * model's topics and ACLs applied as platform-admin, and one client listener per workload for its
 * sidecar.
 */
export class LocalKafka extends pulumi.ComponentResource {
  public readonly host: string;
  /** `host:port` of the direct mTLS listener (apps or tests holding their SVID files). */
  public readonly bootstrap: string;
  /** The SPIFFE ID the broker presents on every listener. */
  public readonly spiffeId: string;
  public readonly caFile: pulumi.Output<string>;
  public readonly workloadListeners: KafkaWorkloadListener[];
  public readonly certificate: WorkloadCertificate;
  public readonly node: LocalProcess;
  /** The host's relay to the pod's client listeners, when the broker runs in a pod. */
  public readonly relay?: LocalRelay;
  /** Where the client listeners bind: the pod's address, or {@link host}. */
  public readonly clientAddress: string;
  public readonly topics: KafkaTopics;
  public readonly acls: KafkaAcls;
  /** Makes the running broker take a renewed certificate without a restart (ADR 0029). */
  public readonly certReload: KafkaCertReload;
  public readonly clusterId: pulumi.Output<string>;

  constructor(name: string, args: LocalKafkaArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Kafka', name, {}, opts);
    for (const [k, v] of Object.entries(args.ports))
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ports.${k} must be a TCP port, got ${v}`, this);
    checkExporterPort(
      name,
      args.jmxExporter,
      [...Object.values(args.ports), ...(args.workloadListeners ?? []).map((l) => l.port)],
      this,
    );
    const heapMb = args.heapMb ?? defaults.heapMb;
    if (!Number.isInteger(heapMb) || heapMb < 128 || heapMb > 16_384)
      throw new pulumi.ResourceError(
        `${name}: heapMb must be an integer in [128, 16384], got ${heapMb}`,
        this,
      );
    const partitions = args.partitions ?? defaults.partitions;
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new pulumi.ResourceError(
        `${name}: partitions must be a positive integer, got ${partitions}`,
        this,
      );

    // Host clients dial loopback; for a broker in a pod, the relay below carries them to the pod.
    this.host = '127.0.0.1';
    this.bootstrap = `${this.host}:${args.ports.direct}`;
    const pod = args.pod;
    const { home, owner } = serverPlacement(name, args.dir, pod, this);
    this.clientAddress = pod?.address ?? this.host;
    this.spiffeId = dataServiceSpiffeId(args.model, 'kafka');
    this.workloadListeners = args.workloadListeners ?? [];
    const listeners: KafkaListener[] = this.workloadListeners.map((l) => ({
      name: workloadListenerName(l.workload),
      port: l.port,
      advertised: l.advertised,
    }));
    const seen = new Map<string, string>();
    for (const [i, l] of this.workloadListeners.entries()) {
      const n = listeners[i]?.name ?? '';
      const other = seen.get(n);
      if (other !== undefined)
        throw new pulumi.ResourceError(
          `${name}: workloadListeners: '${other}' and '${l.workload}' both map to listener ${n}`,
          this,
        );
      seen.set(n, l.workload);
    }

    this.certificate = new WorkloadCertificate(
      `${name}-cert`,
      {
        ca: args.ca,
        spiffeId: this.spiffeId,
        // The broker dials its own controller and inter-broker listeners and verifies the address;
        // clients verify the one they dial: loopback (or the relay there), and the pod's.
        ips: pod !== undefined ? [this.host, pod.address] : [this.host],
        dns: ['localhost'],
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        // The key (and the PEM keystore holding it) readable by the broker's pod user alone.
        ...(owner !== undefined ? { owner } : {}),
      },
      { parent: this },
    );
    this.caFile = this.certificate.files.apply((f) => f.bundle);
    const admin: pulumi.Output<AdminConnection> = args.admin.certificate.files.apply((f) => ({
      bootstrap: this.bootstrap,
      cert: f.cert,
      key: f.key,
      ca: f.bundle,
    }));

    const properties = this.certificate.files.apply((f) =>
      renderProperties(
        kafkaProperties(
          {
            dir: home,
            tls: { keystore: f.keystore, truststore: f.bundle, requireClientAuth: true },
            listeners,
            spiffePrincipals: true,
            properties: kafkaAuthProperties(args.model, args.admin.spiffeId),
            // In a pod: clients reach the pod's address; the direct listener's clients come
            // through the host's relay on loopback, which is what it advertises.
            ...(pod !== undefined
              ? { clientAddress: pod.address, clientAdvertised: this.bootstrap }
              : {}),
          },
          this.host,
          {
            port: args.ports.direct,
            brokerPort: args.ports.broker,
            controllerPort: args.ports.controller,
          },
        ),
      ),
    );
    // Compiles the SPIFFE principal builder on first use (cached per user and version).
    const classpath = pulumi.output(kafkaClasspath({ spiffePrincipals: true }));

    const storage = new KafkaStorage(
      `${name}-storage`,
      { dir: home, properties, classpath, ...(owner !== undefined ? { owner } : {}) },
      { parent: this, dependsOn: [this.certificate] },
    );
    this.clusterId = storage.clusterId;

    // Up before the broker, so that its readiness probe, topics and ACLs go the way host clients do.
    this.relay =
      pod !== undefined
        ? new LocalRelay(
            `${name}-host`,
            {
              dir: `${args.dir}-relay`,
              listen: this.host,
              target: pod.address,
              ports: [
                args.ports.direct,
                ...this.workloadListeners.filter((l) => l.fromHost === true).map((l) => l.port),
              ],
            },
            { parent: this },
          )
        : undefined;
    const conf = pod !== undefined ? join(POD_WORK_DIR, 'conf') : 'conf';
    // A pod's JVM keeps its temporary files (native compression libraries) in its own dir, and no
    // hsperfdata file in the shared /tmp (a JVM puts it there whatever java.io.tmpdir says).
    const tmp =
      pod !== undefined
        ? [`-Djava.io.tmpdir=${join(home, 'tmp')}`, '-XX:+PerfDisableSharedMem']
        : [];
    // The JMX exporter agent: its argument (installing the jar when missing) and its rules file,
    // which the agent reads from the broker's home (`<home>/conf/jmx-exporter.yaml`).
    const exporter = args.jmxExporter;
    const agent = pulumi.output(
      exporter !== undefined ? jmxExporterAgentArg(home, exporter).then((a) => [a]) : [],
    );
    this.node = new LocalProcess(
      `${name}-node`,
      {
        dir: args.dir,
        command: kafkaJava(),
        args: pulumi
          .all([classpath, agent])
          .apply(([cp, jvmArgs]) => [
            ...tmp,
            ...kafkaServerArgs({ dir: home, heapMb, classpath: cp, jvmArgs }),
          ]),
        files: properties.apply((p) => ({
          [join(conf, 'server.properties')]: p,
          [join(conf, 'log4j2.properties')]: KAFKA_LOG4J2,
          ...(exporter !== undefined
            ? {
                [join(conf, basename(jmxExporterConfigFile(home)))]: jmxExporterConfig('kafka'),
              }
            : {}),
        })),
        env: { PATH: '/usr/bin:/bin' },
        ready: admin.apply((a) => ({ kind: 'module' as const, module: IMPL, fn: 'probe', arg: a })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 30_000,
        ...(pod !== undefined ? { pod: pod.launch } : {}),
      },
      {
        parent: this,
        dependsOn: [storage, args.admin.certificate, ...(this.relay ? [this.relay] : [])],
      },
    );

    // Literal topics only: a prefixed entry names a family of topics, granted by its ACLs, not one topic.
    const topics: TopicSpec[] = Object.entries(args.model.kafka.topics)
      .filter(([, t]) => t.pattern === 'literal')
      .map(([topic]) => ({ name: topic, partitions }))
      .sort((a, b) => a.name.localeCompare(b.name));
    this.topics = new KafkaTopics(
      `${name}-topics`,
      { admin, topics },
      { parent: this, dependsOn: [this.node] },
    );
    this.acls = new KafkaAcls(
      `${name}-acls`,
      {
        admin,
        acls: compileKafkaAcls(args.model, { principal: (w) => kafkaPrincipal(args.model, w) }),
      },
      { parent: this, dependsOn: [this.node] },
    );

    this.certReload = new KafkaCertReload(
      `${name}-cert-reload`,
      {
        admin,
        keystore: this.certificate.files.apply((f) => f.keystore),
        listeners: ['CLIENT', 'BROKER', 'CONTROLLER', ...listeners.map((l) => l.name)],
        trigger: this.certificate.certPem,
      },
      { parent: this, dependsOn: [this.node, this.certificate, args.admin.certificate] },
    );

    this.registerOutputs({
      bootstrap: this.bootstrap,
      spiffeId: this.spiffeId,
      caFile: this.caFile,
      clusterId: this.clusterId,
    });
  }
}
