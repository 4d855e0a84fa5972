/**
 * One local Cassandra node's configuration: its options, the cassandra.yaml it gets, its logback
 * config and its JVM command line. Pure: nothing here touches the disk or starts a process.
 */
import { join } from 'node:path';
import type { PodLaunch } from '../pods/launch.ts';
import { CASSANDRA_JVM_OPTIONS, CASSANDRA_MAIN } from '../toolchain/cassandra.ts';
import type { CassandraClientCredentials } from './cassandra-client.ts';
import type { JmxExporterOptions } from './jmx-exporter.ts';

/** The PEM factory of Cassandra 4.1+: key material from PEM files, no keystore passwords. */
export const PEM_SSL_CONTEXT_FACTORY = 'org.apache.cassandra.security.PEMBasedSslContextFactory';

/** PEM files for one side of Cassandra's TLS (see `writePemFiles` in tls.ts). */
export interface CassandraTlsFiles {
  /** PKCS#8 private key followed by the certificate chain. */
  keystore: string;
  /** Trusted CA certificates: whose clients (or peers) are accepted. */
  truststore: string;
  /** Ask for and verify the peer's certificate. @default true */
  requireClientAuth?: boolean;
}

/** A Cassandra class option: a class name, or a class with parameters (as `authenticator:` in cassandra.yaml). */
export type CassandraClass = string | { className: string; parameters?: Record<string, string> };

/** Options of {@link startCassandra}: one single-node cluster on loopback. */
export interface CassandraOptions {
  /** The node's own directory: `conf/`, `data/`, `logs/`, and the process `log` go here. */
  dir: string;
  /** @default 'trellis' (must stay the same across restarts of one data dir) */
  clusterName?: string;
  /** Heap in MiB (-Xms = -Xmx). @default 512 */
  heapMb?: number;
  /** CQL over TLS only (`client_encryption_options`), with client certificates required by default. */
  clientTls?: CassandraTlsFiles;
  /** Internode (gossip, streaming) over TLS only (`server_encryption_options`, `internode_encryption: all`). */
  internodeTls?: CassandraTlsFiles & {
    /** Check that a peer's certificate names its address. @default true */
    requireEndpointVerification?: boolean;
  };
  /** @default 'AllowAllAuthenticator' (e.g. MutualTlsAuthenticator with a SpiffeCertificateValidator) */
  authenticator?: CassandraClass;
  /** @default 'AllowAllAuthorizer' */
  authorizer?: CassandraClass;
  /** @default 'CassandraRoleManager' */
  roleManager?: CassandraClass;
  /**
   * CQL to run once, on the first start of this data dir, as the default superuser (`cassandra`) with
   * PasswordAuthenticator, before the node restarts with the configured authenticator. This is how
   * roles and `ADD IDENTITY` mappings exist before MutualTlsAuthenticator accepts anyone. The default
   * superuser keeps its well-known password; under a certificate-only authenticator it cannot log in.
   */
  bootstrap?: readonly string[];
  /**
   * During the bootstrap start, create this superuser role mapped to a certificate identity, and drop
   * the default `cassandra` superuser with its well-known password: the bootstrap statements then run
   * as this role, and afterwards no role holds a usable password
   * (docs/adr/0005-cassandra-identity-bootstrap.md).
   */
  bootstrapSuperuser?: { role: string; identity: string };
  /** How the readiness probe connects when TLS or authentication is on (its client certificate, a login). */
  probe?: CassandraClientCredentials;
  /** Fixed loopback ports (a Pulumi stack's); free ports are picked when omitted. */
  ports?: CassandraPorts;
  /**
   * How the commit log reaches the disk (`commitlog_sync`): what a crash of the machine can lose.
   * @default { mode: 'periodic', periodMs: 10_000 } (the upstream default)
   */
  commitlog?: CommitlogSync;
  /**
   * Audit log (`audit_logging_options`): every DML, DDL and DCL statement outside the system
   * keyspaces and every login (AUTH), with the role it ran as, one line each in
   * `<dir>/logs/audit.log` (see {@link cassandraAuditLogging}). @default false
   */
  audit?: boolean;
  /**
   * Who may open an internode connection (`internode_authenticator`), e.g.
   * MutualTlsInternodeAuthenticator with `trusted_peer_identities` (see cassandra-cluster.ts).
   * Needs {@link internodeTls} with client certificates required. @default none (any TLS peer)
   */
  internodeAuthenticator?: CassandraClass;
  /**
   * The node's loopback address: `listen_address`, and `rpc_address` unless {@link rpcAddress}.
   * Nodes of one cluster differ by address (127.0.0.x) and share one storage port.
   * @default '127.0.0.1'
   */
  address?: string;
  /** Seed addresses (`seed_provider`), at the node's storage port. @default [the node's address] */
  seeds?: readonly string[];
  /** The node's one token (`initial_token`, Murmur3 range). @default '0' */
  initialToken?: string;
  /**
   * `auto_bootstrap`: a node joining a running cluster streams the data of the ranges it takes.
   * @default not set (Cassandra's default, true; a seed never bootstraps)
   */
  autoBootstrap?: boolean;
  /** Extra cassandra.yaml entries, applied last. */
  yaml?: Record<string, unknown>;
  /**
   * fsync flushes of the system keyspaces. Off by default (`-Dcassandra.unsafesystem=true`), which saves
   * seconds of first start on slow disks; a crash of the machine may then lose recent schema changes.
   * @default false
   */
  fsyncSystemTables?: boolean;
  /** Extra JVM arguments (system properties, GC logging), placed before the main class. */
  jvmArgs?: readonly string[];
  /**
   * Run the Prometheus JMX exporter agent in the node, its HTTP server on 127.0.0.1 (the pod's own
   * loopback in a pod) at this port, with the rules of `JMX_EXPORTER_CONFIGS.cassandra`.
   * @default no agent
   */
  jmxExporter?: JmxExporterOptions;
  /** @default 240_000 */
  startupTimeoutMs?: number;
  /**
   * The address the native transport (CQL) binds and clients dial, when it is not the node's own
   * (a pod's address, with storage and JMX on the pod's loopback). @default the node's address
   */
  rpcAddress?: string;
  /**
   * Run the node in this pod, as its user (ADR 0012): `dir` becomes that user's before the start
   * (the bootstrap's too), and the node reads and writes nothing else. @default on the host
   */
  pod?: PodLaunch;
}

/** The loopback ports of one node. */
export interface CassandraPorts {
  /** CQL native transport. */
  native: number;
  /** Internode (gossip, streaming). */
  storage: number;
  /** Local-only JMX, for nodetool. */
  jmx: number;
}

/**
 * `commitlog_sync` of cassandra.yaml (Cassandra 5.0 `Config.CommitLogSync`): `periodic` acknowledges
 * writes before the fsync, which runs every `periodMs`; `batch` fsyncs before acknowledging;
 * `group` fsyncs every `windowMs` and acknowledges the writes of that window after it.
 */
export type CommitlogSync =
  { mode: 'periodic'; periodMs: number } | { mode: 'batch' } | { mode: 'group'; windowMs: number };

interface Ports {
  nativePort: number;
  storagePort: number;
}

/**
 * The cassandra.yaml for one local node, as a plain object (Cassandra's SnakeYAML reads the JSON we write).
 * Keys are Cassandra 5.0's (conf/cassandra.yaml on the cassandra-5.0 branch); sized for a 2-core dev machine.
 */
export function cassandraConfig(
  opts: CassandraOptions,
  host: string,
  ports: Ports,
): Record<string, unknown> {
  const data = join(opts.dir, 'data');
  const cfg: Record<string, unknown> = {
    cluster_name: opts.clusterName ?? 'trellis',
    // One token at a fixed position: no token allocation work; a single node owns the whole ring,
    // the nodes of a cluster get evenly spaced tokens (cassandra-cluster.ts).
    num_tokens: 1,
    initial_token: opts.initialToken ?? '0',
    partitioner: 'org.apache.cassandra.dht.Murmur3Partitioner',
    endpoint_snitch: 'SimpleSnitch',
    seed_provider: [
      {
        class_name: 'org.apache.cassandra.locator.SimpleSeedProvider',
        parameters: [
          {
            seeds: (opts.seeds ?? [host]).map((a) => `${a}:${ports.storagePort}`).join(','),
          },
        ],
      },
    ],
    listen_address: host,
    rpc_address: opts.rpcAddress ?? host,
    storage_port: ports.storagePort,
    native_transport_port: ports.nativePort,
    start_native_transport: true,
    data_file_directories: [join(data, 'data')],
    commitlog_directory: join(data, 'commitlog'),
    saved_caches_directory: join(data, 'saved_caches'),
    hints_directory: join(data, 'hints'),
    cdc_raw_directory: join(data, 'cdc_raw'),
    // Stated explicitly because it decides what a crash of the machine loses
    // (docs/adr/0005-cassandra-identity-bootstrap.md).
    ...commitlogConfig(opts.commitlog ?? { mode: 'periodic', periodMs: 10_000 }),
    // Two cores: upstream's 32/32/32 and per-disk compactors only add contention here.
    concurrent_reads: 8,
    concurrent_writes: 8,
    concurrent_counter_writes: 4,
    concurrent_materialized_view_writes: 2,
    concurrent_compactors: 1,
    authenticator: classOption(opts.authenticator ?? 'AllowAllAuthenticator'),
    authorizer: classOption(opts.authorizer ?? 'AllowAllAuthorizer'),
    role_manager: classOption(opts.roleManager ?? 'CassandraRoleManager'),
    ...(opts.autoBootstrap !== undefined ? { auto_bootstrap: opts.autoBootstrap } : {}),
  };
  if (opts.clientTls) {
    cfg.client_encryption_options = {
      enabled: true,
      // Not optional: a plaintext CQL connection is refused on the one native port.
      optional: false,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
      keystore: opts.clientTls.keystore,
      truststore: opts.clientTls.truststore,
      require_client_auth: opts.clientTls.requireClientAuth ?? true,
    };
  }
  if (opts.internodeTls) {
    cfg.server_encryption_options = {
      internode_encryption: 'all',
      optional: false,
      legacy_ssl_storage_port_enabled: false,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
      keystore: opts.internodeTls.keystore,
      truststore: opts.internodeTls.truststore,
      require_client_auth: opts.internodeTls.requireClientAuth ?? true,
      require_endpoint_verification: opts.internodeTls.requireEndpointVerification ?? true,
    };
  }
  if (opts.internodeAuthenticator) {
    if (!opts.internodeTls || opts.internodeTls.requireClientAuth === false)
      throw new Error(
        'cassandra: internodeAuthenticator needs internodeTls with requireClientAuth (certificates to check)',
      );
    cfg.internode_authenticator = classOption(opts.internodeAuthenticator);
  }
  if (opts.audit === true) cfg.audit_logging_options = cassandraAuditLogging();
  return { ...cfg, ...(opts.yaml ?? {}) };
}

/** The file the audit log is written to under a node's `logs/` (see {@link CASSANDRA_LOGBACK}). */
export const CASSANDRA_AUDIT_LOG = 'audit.log';

/** Cassandra 5.0's system keyspaces: what the audit log leaves out. */
export const CASSANDRA_SYSTEM_KEYSPACES = [
  'system',
  'system_auth',
  'system_distributed',
  'system_schema',
  'system_traces',
  'system_views',
  'system_virtual_schema',
] as const;

/**
 * `audit_logging_options` (Cassandra 5.0 `AuditLogOptions`): FileAuditLogger, which writes each event
 * as one text line through its own logger (to {@link CASSANDRA_AUDIT_LOG} by
 * our logback config), rather than BinAuditLogger's Chronicle queue that needs `auditlogviewer` to
 * read. The categories that say who changed or read what: DML, DDL, DCL, AUTH.
 *
 * Keyspaces are filtered by excluding the system ones, not by including the apps': 5.0's
 * `AuditLogFilter.isFiltered` drops an event whose keyspace is null (a login) whenever
 * `included_keyspaces` is set, so an include list would lose every AUTH event. The apps' keyspaces
 * are the only others a stack has (platform-admin creates nothing else), so the effect is the same.
 * Values bound to prepared statements are not logged, only the statement text.
 */
export function cassandraAuditLogging(): Record<string, unknown> {
  return {
    enabled: true,
    logger: [{ class_name: 'FileAuditLogger' }],
    excluded_keyspaces: CASSANDRA_SYSTEM_KEYSPACES.join(','),
    included_categories: 'DML,DDL,DCL,AUTH',
  };
}

/** The cassandra.yaml keys of a {@link CommitlogSync} (5.0 names: `commitlog_sync_period`, `commitlog_sync_group_window`). */
export function commitlogConfig(c: CommitlogSync): Record<string, string> {
  const ms = (v: number, field: string): string => {
    if (!Number.isInteger(v) || v < 1 || v > 60_000)
      throw new Error(
        `cassandra: commitlog ${field} must be an integer in [1, 60000] ms, got ${v}`,
      );
    return `${v}ms`;
  };
  switch (c.mode) {
    case 'periodic':
      return { commitlog_sync: 'periodic', commitlog_sync_period: ms(c.periodMs, 'periodMs') };
    case 'batch':
      return { commitlog_sync: 'batch' };
    case 'group':
      return { commitlog_sync: 'group', commitlog_sync_group_window: ms(c.windowMs, 'windowMs') };
  }
}

function classOption(c: CassandraClass): unknown {
  if (typeof c === 'string') {
    if (!/^[A-Za-z_][\w.$]*$/.test(c))
      throw new Error(`cassandra: bad class name ${JSON.stringify(c)}`);
    return c;
  }
  if (!/^[A-Za-z_][\w.$]*$/.test(c.className))
    throw new Error(`cassandra: bad className ${JSON.stringify(c.className)}`);
  return { class_name: c.className, parameters: c.parameters ?? {} };
}

/**
 * Logback config: everything at INFO to stdout, which the harness keeps in `<dir>/log`; the audit
 * log (FileAuditLogger's events, already carrying their own timestamp) alone to
 * `<cassandra.logdir>/audit.log`, one event per line.
 */
export const CASSANDRA_LOGBACK = `<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="AUDIT" class="ch.qos.logback.core.FileAppender">
    <file>\${cassandra.logdir}/${CASSANDRA_AUDIT_LOG}</file>
    <encoder><pattern>%msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra.audit.FileAuditLogger" level="INFO" additivity="false">
    <appender-ref ref="AUDIT"/>
  </logger>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

/**
 * The JVM command line for one node. System properties are the ones `bin/cassandra` and
 * `conf/cassandra-env.sh` set, plus startup shortcuts for a single node, each checked to exist in
 * 5.0's `CassandraRelevantProperties`:
 * - `cassandra.skip_wait_for_gossip_to_settle=0`: no peers to wait for (saves ~8 s);
 * - `cassandra.ring_delay_ms=0`: no ring to learn before joining;
 * - `cassandra.superuser_setup_delay_ms=0`: create the default roles at once, not after 10 s.
 */
export function cassandraArgs(opts: {
  dir: string;
  heapMb: number;
  jmxPort: number;
  classpath: string;
  extra?: readonly string[];
}): string[] {
  const conf = join(opts.dir, 'conf');
  return [
    `-Xms${opts.heapMb}m`,
    `-Xmx${opts.heapMb}m`,
    ...CASSANDRA_JVM_OPTIONS,
    `-Dcassandra.config=file://${join(conf, 'cassandra.yaml')}`,
    `-Dlogback.configurationFile=${join(conf, 'logback.xml')}`,
    `-Dcassandra.storagedir=${join(opts.dir, 'data')}`,
    `-Dcassandra.logdir=${join(opts.dir, 'logs')}`,
    '-Dcassandra-foreground=yes',
    `-Dcassandra.jmx.local.port=${opts.jmxPort}`,
    '-Djava.rmi.server.hostname=127.0.0.1',
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=0',
    '-Dcassandra.superuser_setup_delay_ms=0',
    `-XX:HeapDumpPath=${join(opts.dir, 'logs')}`,
    ...(opts.extra ?? []),
    '-cp',
    opts.classpath,
    CASSANDRA_MAIN,
  ];
}
