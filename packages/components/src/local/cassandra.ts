import * as pulumi from '@pulumi/pulumi';
import { join } from 'node:path';
import {
  cassandraLaunchSpec,
  LOCAL_DATACENTER,
  type CassandraOptions,
  type CommitlogSync,
} from '@trellis/local/harness';
import {
  compileCassandra,
  dataServiceSpiffeId,
  type BoundModel,
  type ValidModel,
} from '@trellis/policy';
import type {
  AdminConnection,
  BootstrapInputs,
  BootstrapOutputs,
  CertReloadInputs,
  CertReloadOutputs,
  GrantsInputs,
  GrantsOutputs,
} from './cassandra-impl.ts';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { POD_WORK_DIR } from './process-impl.ts';
import { LocalProcess } from './process.ts';
import { LocalRelay } from './relay.ts';
import { checkExporterPort, serverPlacement, type ServerPod } from './server-pod.ts';

export type { ServerPod } from './server-pod.ts';

// Captured by the serialized providers instead of module objects (see process.ts).
const IMPL = new URL('./cassandra-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./cassandra-impl.ts');

const bootstrapProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: BootstrapOutputs, news: BootstrapInputs) {
    const changed =
      olds.dir !== news.options.dir ||
      JSON.stringify(olds.superuser) !== JSON.stringify(news.options.bootstrapSuperuser);
    return { changes: changed, replaces: [] };
  },
  async create(inputs: BootstrapInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.options.dir, outs: await impl.bootstrap(inputs) };
  },
  async update(_id: string, olds: BootstrapOutputs, news: BootstrapInputs) {
    // The superuser lives in the data dir's auth tables: another one needs a fresh data dir.
    throw new Error(
      `cassandra bootstrap: ${olds.dir} was bootstrapped for ${olds.superuser.identity} ` +
        `(role ${olds.superuser.role}); moving it to ${news.options.dir} or changing the superuser to ` +
        `${news.options.bootstrapSuperuser.identity} needs a fresh stack (pulumi destroy, then up)`,
    );
  },
  async read(id: string, props: BootstrapOutputs) {
    const impl = (await import(IMPL)) as Impl;
    return impl.bootstrapExists(props) ? { id, props } : { id: '', props: {} };
  },
  async delete() {
    // Nothing to undo: the marker lives in the node's data dir, which the node's LocalProcess purges.
  },
};

/**
 * The first start of a Cassandra data dir, as a resource: start with PasswordAuthenticator, make
 * platform-admin the superuser (a certificate identity), drop the default `cassandra` superuser, stop
 * (docs/adr/0005-cassandra-identity-bootstrap.md). Runs at create only; the node's LocalProcess then
 * starts on the same data dir.
 */
class CassandraBootstrap extends pulumi.dynamic.Resource {
  declare public readonly bootstrappedAt: pulumi.Output<string>;

  constructor(
    name: string,
    args: { options: pulumi.Input<BootstrapInputs['options']> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      bootstrapProvider,
      name,
      { options: args.options, bootstrappedAt: undefined },
      opts,
      'trellis-local',
      'CassandraBootstrap',
    );
  }
}

const grantsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: GrantsOutputs, news: GrantsInputs) {
    const impl = (await import(IMPL)) as Impl;
    // The CQL text is the diff: an unchanged model is no change, whatever the connection details.
    return { changes: olds.cql !== impl.cqlOf(news.statements), replaces: [] };
  },
  async create(inputs: GrantsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: `${inputs.admin.host}:${inputs.admin.port}`, outs: await impl.applyAll(inputs) };
  },
  async update(_id: string, olds: GrantsOutputs, news: GrantsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.applyUpdate(olds, news) };
  },
  async read(id: string, props: GrantsOutputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id, props: await impl.observe(props) };
  },
  async delete() {
    // Nothing to undo: the roles and grants live in the node's data dir, purged with the node.
  },
};

/** Keyspaces, roles, `ADD IDENTITY` mappings and grants, applied as platform-admin. */
export class CassandraGrants extends pulumi.dynamic.Resource {
  declare public readonly cql: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      admin: pulumi.Input<AdminConnection>;
      statements: pulumi.Input<GrantsInputs['statements']>;
    },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      grantsProvider,
      name,
      { admin: args.admin, statements: args.statements, cql: undefined },
      opts,
      'trellis-local',
      'CassandraGrants',
    );
  }
}

const certReloadProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: CertReloadOutputs, news: CertReloadInputs) {
    return {
      changes:
        olds.trigger !== news.trigger ||
        olds.keystore !== news.keystore ||
        JSON.stringify(olds.node) !== JSON.stringify(news.node),
      replaces: [],
    };
  },
  async create(inputs: CertReloadInputs) {
    const impl = (await import(IMPL)) as Impl;
    // A node that just started read these files already; one that was running (a stack from
    // before this resource) takes them now.
    return { id: inputs.keystore, outs: await impl.reloadCerts(inputs) };
  },
  async update(_id: string, _olds: CertReloadOutputs, news: CertReloadInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.reloadCerts(news) };
  },
  async delete() {
    // Nothing to undo.
  },
};

/**
 * Makes the running node present its renewed certificate (CQL and internode) when `trigger`
 * changes, by `nodetool reloadssl` (ADR 0029): no restart.
 */
export class CassandraCertReload extends pulumi.dynamic.Resource {
  declare public readonly serial: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      admin: pulumi.Input<AdminConnection>;
      keystore: pulumi.Input<string>;
      node: CertReloadInputs['node'];
      pod?: pulumi.Input<CertReloadInputs['pod']>;
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
      'CassandraCertReload',
    );
  }
}

/** A client identity with its certificate files, e.g. platform-admin. */
export interface ClientIdentity {
  spiffeId: string;
  certificate: WorkloadCertificate;
}

/** Inputs of a {@link LocalCassandra}. */
export interface LocalCassandraArgs {
  /** The policy model: keyspaces, roles, identities and grants come from `compileCassandra`. */
  model: BoundModel;
  /** Issues the node's certificate; its root is the trust bundle for clients and internode. */
  ca: LocalMeshCa;
  /** The node's directory: config, data, logs (a LocalProcess dir, purged on destroy). */
  dir: string;
  /** Directory of the node's certificate files. */
  certDir: string;
  /** The identity that becomes the only superuser and applies the grants (platform-admin). */
  admin: ClientIdentity;
  /** Loopback ports: CQL, internode, JMX. */
  ports: { native: number; storage: number; jmx: number };
  /** @default 512 */
  heapMb?: number;
  /**
   * `commitlog_sync`. Batch: a write is acknowledged only once its commit log is fsynced, since a
   * single local node has no replica to fall back on (docs/adr/0005-cassandra-identity-bootstrap.md).
   * @default { mode: 'batch' }
   */
  commitlog?: CommitlogSync;
  /**
   * fsync the flushes of the system keyspaces too (schema, local state). Off, a crash of the machine
   * can lose recent schema changes whose commit log segments were already recycled. @default true
   */
  fsyncSystemTables?: boolean;
  /** Replication of the model's keyspaces. @default { class: 'SimpleStrategy', replication_factor: 1 } */
  replication?: Record<string, string | number>;
  /** Certificate lifetime. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the node's certificate. @default 0 */
  rotation?: pulumi.Input<number>;
  /** How long the node may take to answer CQL after a start. @default 300_000 */
  readyTimeoutMs?: number;
  /**
   * Run the node in this pod, as its user (ADR 0012): the native transport binds the pod's
   * address, storage and JMX the pod's own loopback (nodetool works from inside the pod only), and
   * the node's files (`<dir>/pod`) and key are that user's. Host clients keep 127.0.0.1:`native`
   * through a {@link LocalRelay} to the pod. @default on the host
   */
  pod?: ServerPod;
  /**
   * Run the Prometheus JMX exporter agent in the node's JVM (ADR 0020), its HTTP server on the
   * node's own 127.0.0.1 at `port` (in a pod, the pod's loopback): only a metrics front in the same
   * pod reaches it. The agent is not part of the first-start bootstrap. @default none
   */
  jmxExporter?: { port: number };
}

const defaults = {
  heapMb: 512,
  commitlog: { mode: 'batch' } as CommitlogSync,
  fsyncSystemTables: true,
  replication: { class: 'SimpleStrategy', replication_factor: 1 } as Record<
    string,
    string | number
  >,
  certValidHours: 24,
  readyTimeoutMs: 300_000,
  superuserRole: 'platform_admin',
};

const MUTUAL_TLS_AUTHENTICATOR = {
  className: 'org.apache.cassandra.auth.MutualTlsAuthenticator',
  // Cassandra 5.0: the SPIFFE URI SAN of the client certificate is the identity ADD IDENTITY maps.
  parameters: { validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator' },
};

/** The model's grants that would touch a system keyspace: apps never get one. */
export function systemKeyspaceGrants(model: ValidModel): string[] {
  return model.cassandra.grants
    .map((g, i) => ({ g, i }))
    .filter(({ g }) => /^system/i.test(g.keyspace))
    .map(({ g, i }) => `cassandra.grants[${i}].keyspace: '${g.keyspace}' is a system keyspace`);
}

/**
 * Cassandra 5 on one machine, as real processes and Pulumi resources: client encryption with client
 * certificates required, internode encryption `all`, MutualTlsAuthenticator with SPIFFE identities
 * (no service holds a password), CassandraAuthorizer, an explicit `commitlog_sync`, and the model's
 * keyspaces, roles, identities and grants applied as platform-admin.
 */
export class LocalCassandra extends pulumi.ComponentResource {
  /** Where clients connect (CQL over mTLS). */
  public readonly host: string;
  public readonly port: number;
  /** The SPIFFE ID the node presents: what clients (and sidecars) must verify. */
  public readonly spiffeId: string;
  public readonly localDataCenter: string;
  /** The trust bundle (Mesh CA root) that signs the node's certificate. */
  public readonly caFile: pulumi.Output<string>;
  public readonly certificate: WorkloadCertificate;
  public readonly node: LocalProcess;
  /** The host's relay to the pod's native transport, when the node runs in a pod. */
  public readonly relay?: LocalRelay;
  /** Where the native transport listens: the pod's address, or {@link host}. */
  public readonly nativeAddress: string;
  public readonly grants: CassandraGrants;
  /** Makes the running node take a renewed certificate without a restart (ADR 0029). */
  public readonly certReload: CassandraCertReload;
  /** The CQL applied from the model. */
  public readonly cql: pulumi.Output<string>;

  constructor(name: string, args: LocalCassandraArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Cassandra', name, {}, opts);
    const bad = systemKeyspaceGrants(args.model);
    if (bad.length > 0)
      throw new pulumi.ResourceError(
        `${name}: apps get no grant on system keyspaces: ${bad.join('; ')}`,
        this,
      );
    for (const [k, v] of Object.entries(args.ports))
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ports.${k} must be a TCP port, got ${v}`, this);
    checkExporterPort(name, args.jmxExporter, Object.values(args.ports), this);
    const heapMb = args.heapMb ?? defaults.heapMb;
    if (!Number.isInteger(heapMb) || heapMb < 256 || heapMb > 16_384)
      throw new pulumi.ResourceError(
        `${name}: heapMb must be an integer in [256, 16384], got ${heapMb}`,
        this,
      );

    // Host clients dial loopback; for a node in a pod, the relay below carries them to the pod.
    this.host = '127.0.0.1';
    this.port = args.ports.native;
    this.spiffeId = dataServiceSpiffeId(args.model, 'cassandra');
    this.localDataCenter = LOCAL_DATACENTER;
    const pod = args.pod;
    const { home, owner } = serverPlacement(name, args.dir, pod, this);
    this.nativeAddress = pod?.address ?? this.host;

    this.certificate = new WorkloadCertificate(
      `${name}-cert`,
      {
        ca: args.ca,
        spiffeId: this.spiffeId,
        // Internode endpoint verification checks the peer's address against the certificate, and
        // clients check the address they dial: loopback (or the relay there), and the pod's.
        ips: pod !== undefined ? [this.host, pod.address] : [this.host],
        dns: ['localhost'],
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        // The key (and the PEM keystore holding it) readable by the node's pod user alone.
        ...(owner !== undefined ? { owner } : {}),
      },
      { parent: this },
    );
    this.caFile = this.certificate.files.apply((f) => f.bundle);
    const adminFiles = args.admin.certificate.files;
    const admin: pulumi.Output<AdminConnection> = adminFiles.apply((f) => ({
      host: this.host,
      port: args.ports.native,
      cert: f.cert,
      key: f.key,
      ca: f.bundle,
    }));

    // Cassandra locks its memory (mlockall) and warns when it cannot: its pod keeps CAP_IPC_LOCK
    // (ADR 0012), for the first-start bootstrap and the node alike.
    const launch =
      pod !== undefined
        ? pulumi.output(pod.launch).apply((l) => ({ ...l, lockMemory: true }))
        : undefined;
    const options = pulumi
      .all([this.certificate.files, adminFiles, launch])
      .apply(([server, a, launch]): BootstrapInputs['options'] => {
        const tls = { keystore: server.keystore, truststore: server.bundle };
        const o: CassandraOptions = {
          dir: home,
          heapMb,
          clientTls: { ...tls, requireClientAuth: true },
          internodeTls: { ...tls, requireClientAuth: true, requireEndpointVerification: true },
          authenticator: MUTUAL_TLS_AUTHENTICATOR,
          authorizer: 'CassandraAuthorizer',
          roleManager: 'CassandraRoleManager',
          commitlog: args.commitlog ?? defaults.commitlog,
          fsyncSystemTables: args.fsyncSystemTables ?? defaults.fsyncSystemTables,
          probe: { cert: a.cert, key: a.key, ca: a.bundle },
          // The audit trail: statements on the apps' keyspaces and logins, with the role the
          // SPIFFE ID mapped to (logs/audit.log).
          audit: true,
          startupTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
          ...(pod !== undefined && launch !== undefined
            ? {
                rpcAddress: pod.address,
                pod: launch,
                // Its JVM's temporary files (JNA's native library) in its own dir, not /tmp.
                jvmArgs: [
                  `-Djava.io.tmpdir=${join(home, 'tmp')}`,
                  `-Djna.tmpdir=${join(home, 'tmp')}`,
                ],
              }
            : {}),
        };
        return {
          ...o,
          ports: args.ports,
          bootstrapSuperuser: { role: defaults.superuserRole, identity: args.admin.spiffeId },
        };
      });

    // Up before the node, so that its readiness probe and the grants go the way host clients do.
    this.relay =
      pod !== undefined
        ? new LocalRelay(
            `${name}-host`,
            {
              dir: `${args.dir}-relay`,
              listen: this.host,
              target: pod.address,
              ports: [args.ports.native],
            },
            { parent: this },
          )
        : undefined;
    const boot = new CassandraBootstrap(
      `${name}-bootstrap`,
      { options },
      { parent: this, dependsOn: [this.certificate, args.admin.certificate] },
    );

    // The agent runs in the node only, not in the bootstrap's first start.
    const jmxExporter = args.jmxExporter;
    const spec = options.apply(({ bootstrapSuperuser: _su, pod: _pod, ...o }) =>
      cassandraLaunchSpec(
        { ...o, ...(jmxExporter !== undefined ? { jmxExporter } : {}) },
        args.ports,
      ),
    );
    // LocalProcess writes files relative to its dir: in a pod, below the user's own `pod/`.
    const files =
      pod !== undefined
        ? spec.files.apply((f) =>
            Object.fromEntries(Object.entries(f).map(([k, v]) => [join(POD_WORK_DIR, k), v])),
          )
        : spec.files;
    this.node = new LocalProcess(
      `${name}-node`,
      {
        dir: args.dir,
        command: spec.command,
        args: spec.args,
        files,
        env: { PATH: '/usr/bin:/bin' },
        ready: admin.apply((a) => ({ kind: 'module' as const, module: IMPL, fn: 'probe', arg: a })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        // Cassandra drains on SIGTERM; give it time before the supervisor kills it.
        stopGraceMs: 30_000,
        ...(launch !== undefined ? { pod: launch } : {}),
      },
      { parent: this, dependsOn: [boot, ...(this.relay ? [this.relay] : [])] },
    );

    const compiled = compileCassandra(args.model, {
      replication: args.replication ?? defaults.replication,
    });
    this.grants = new CassandraGrants(
      `${name}-grants`,
      { admin, statements: compiled.statements },
      { parent: this, dependsOn: [this.node] },
    );
    this.cql = this.grants.cql;
    this.certReload = new CassandraCertReload(
      `${name}-cert-reload`,
      {
        admin,
        keystore: this.certificate.files.apply((f) => f.keystore),
        node: { dir: home, jmxPort: args.ports.jmx, logFile: join(args.dir, 'process.log') },
        ...(pod !== undefined ? { pod: pod.launch } : {}),
        trigger: this.certificate.certPem,
      },
      { parent: this, dependsOn: [this.node, this.certificate, args.admin.certificate] },
    );

    this.registerOutputs({
      host: this.host,
      port: this.port,
      spiffeId: this.spiffeId,
      caFile: this.caFile,
      cql: this.cql,
    });
  }
}
