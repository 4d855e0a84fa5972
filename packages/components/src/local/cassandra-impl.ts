/**
 * The bodies of the local Cassandra dynamic providers (bootstrap once, readiness probe, CQL grants).
 * Imported by absolute path inside Pulumi's dynamic-provider host (see process.ts for why).
 */
import { Client } from 'cassandra-driver';
import { existsSync, readFileSync } from 'node:fs';
import {
  bootstrapCassandra,
  cassandraBootstrapMarker,
  cassandraClientOptions,
  LOCAL_DATACENTER,
  probeCassandra,
  reloadCassandraCertificates,
  type CassandraOptions,
  type CassandraPorts,
} from '@trellis/local/harness';
import type { PodLaunch } from '@trellis/local/pods';
import type { CassandraStatement } from '@trellis/policy';

/** How platform-admin reaches the node: the node's address and PEM file paths. */
export interface AdminConnection {
  host: string;
  port: number;
  /** Certificate chain, private key, and the CA bundle that signs the node. */
  cert: string;
  key: string;
  ca: string;
}

/** Inputs of the bootstrap: the node's options for its first start, and who becomes superuser. */
export interface BootstrapInputs {
  options: CassandraOptions & {
    ports: CassandraPorts;
    bootstrapSuperuser: { role: string; identity: string };
  };
}

/** Bootstrap outputs: where the marker is, and for which identity the data dir was bootstrapped. */
export interface BootstrapOutputs {
  dir: string;
  marker: string;
  superuser: { role: string; identity: string };
  bootstrappedAt: string;
  /** Milliseconds the bootstrap start took (0 when the data dir was already bootstrapped). */
  ms: number;
}

/** First start of the data dir (certificate-less superuser login, then stop); a no-op afterwards. */
export async function bootstrap(i: BootstrapInputs): Promise<BootstrapOutputs> {
  const ran = await bootstrapCassandra(i.options);
  const marker = cassandraBootstrapMarker(i.options.dir);
  return {
    dir: i.options.dir,
    marker,
    superuser: i.options.bootstrapSuperuser,
    bootstrappedAt: readFileSync(marker, 'utf8').trim(),
    ms: ran?.ms ?? 0,
  };
}

/** Refresh of the bootstrap: gone when its data dir lost the marker. */
export function bootstrapExists(o: BootstrapOutputs): boolean {
  return existsSync(o.marker);
}

/** Readiness probe of the node (LocalProcess `module` probe): a real CQL query as platform-admin. */
export async function probe(c: AdminConnection): Promise<boolean> {
  await probeCassandra(server(c), { cert: c.cert, key: c.key, ca: c.ca });
  return true;
}

function server(c: AdminConnection) {
  return {
    host: c.host,
    contactPoint: `${c.host}:${c.port}`,
    localDataCenter: LOCAL_DATACENTER,
    tls: true,
  };
}

/** Inputs of the certificate reload: the node's keystore, how nodetool reaches it, the trigger. */
export interface CertReloadInputs {
  admin: AdminConnection;
  /** The node's PEM keystore path (`keystore` of its encryption options). */
  keystore: string;
  /** The node's home (nodetool's `user.home` and logback config), JMX port, and process log. */
  node: { dir: string; jmxPort: number; logFile: string };
  /** Run nodetool in the node's pod, as its user (its JMX is on the pod's loopback). */
  pod?: PodLaunch;
  /** The certificate (PEM): a new one means new files for the node to take. */
  trigger: string;
}

/** Certificate reload outputs: what the native transport presents afterwards. */
export interface CertReloadOutputs extends CertReloadInputs {
  serial: string;
  /** Milliseconds from `nodetool reloadssl` until the native transport presented it. */
  ms: number;
}

/**
 * Make the running node take its renewed key material without a restart (`nodetool reloadssl`,
 * ADR 0029) and check that the native transport presents it.
 */
export async function reloadCerts(i: CertReloadInputs): Promise<CertReloadOutputs> {
  const r = await reloadCassandraCertificates(
    {
      // nodetool's JMX address: the node's own loopback (a pod's, from inside the pod).
      host: '127.0.0.1',
      jmxPort: i.node.jmxPort,
      dir: i.node.dir,
      nativePort: i.admin.port,
      tls: true,
      logFile: i.node.logFile,
      contactPoint: `${i.admin.host}:${i.admin.port}`,
    },
    {
      keystore: i.keystore,
      client: { cert: i.admin.cert, key: i.admin.key, ca: i.admin.ca },
      verify: [{ name: 'native', host: i.admin.host, port: i.admin.port }],
      ...(i.pod !== undefined ? { pod: i.pod } : {}),
    },
  );
  return { ...i, serial: r.expected.serial, ms: r.ms };
}

/** Inputs of the grants resource: the compiled statements, applied as platform-admin. */
export interface GrantsInputs {
  admin: AdminConnection;
  statements: CassandraStatement[];
}

/** Grants outputs: the statements in effect. */
export interface GrantsOutputs extends GrantsInputs {
  /** The CQL text in effect, one statement per line: what `diff` compares. */
  cql: string;
}

/** The CQL text of a statement list (the diff key). */
export function cqlOf(statements: readonly CassandraStatement[]): string {
  return statements.map((s) => s.cql).join('\n');
}

const quoteString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const quoteName = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/**
 * The statement that undoes one that left the model. Keyspaces are kept (they hold data; nobody is
 * granted them any more), so they undo to nothing.
 */
export function undoStatement(s: CassandraStatement): string | null {
  switch (s.kind) {
    case 'create-keyspace':
      return null;
    case 'create-role':
      return `DROP ROLE IF EXISTS ${quoteString(s.role)};`;
    case 'add-identity':
      return `DROP IDENTITY IF EXISTS ${quoteString(s.identity)};`;
    case 'grant': {
      const resource =
        s.table === undefined
          ? `KEYSPACE ${quoteName(s.keyspace)}`
          : `TABLE ${quoteName(s.keyspace)}.${quoteName(s.table)}`;
      return `REVOKE ${s.permission} ON ${resource} FROM ${quoteString(s.role)};`;
    }
  }
}

const undoOrder: Record<CassandraStatement['kind'], number> = {
  grant: 0,
  'add-identity': 1,
  'create-role': 2,
  'create-keyspace': 3,
};

/**
 * What an update runs: undo the statements that left (grants first, then identities, then roles),
 * then every current statement again (each is idempotent: IF NOT EXISTS, or a GRANT that is a no-op
 * when held). A statement whose text is unchanged stays as it is.
 */
export function planUpdate(
  olds: readonly CassandraStatement[],
  news: readonly CassandraStatement[],
): string[] {
  const keep = new Set(news.map((s) => s.cql));
  const removed = olds
    .filter((s) => !keep.has(s.cql))
    .sort((a, b) => undoOrder[a.kind] - undoOrder[b.kind]);
  const undo = removed.map(undoStatement).filter((c): c is string => c !== null);
  return [...undo, ...news.map((s) => s.cql)];
}

async function withClient<T>(c: AdminConnection, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(
    cassandraClientOptions(server(c), { cert: c.cert, key: c.key, ca: c.ca }),
  );
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}

/** Run statements in order as platform-admin; a failure names the statement. */
export async function execute(c: AdminConnection, cql: readonly string[]): Promise<void> {
  await withClient(c, async (client) => {
    for (const q of cql) {
      try {
        await client.execute(q);
      } catch (err) {
        throw new Error(`cassandra grants: ${q}\n  failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  });
}

/** Create: apply every statement. */
export async function applyAll(i: GrantsInputs): Promise<GrantsOutputs> {
  await execute(
    i.admin,
    i.statements.map((s) => s.cql),
  );
  return { ...i, cql: cqlOf(i.statements) };
}

/** Update: undo what left the model, re-apply the rest. */
export async function applyUpdate(olds: GrantsOutputs, news: GrantsInputs): Promise<GrantsOutputs> {
  await execute(news.admin, planUpdate(olds.statements, news.statements));
  return { ...news, cql: cqlOf(news.statements) };
}

/** Whether one statement is in effect, read from the schema and auth tables as platform-admin. */
async function inEffect(client: Client, s: CassandraStatement): Promise<boolean> {
  switch (s.kind) {
    case 'create-keyspace': {
      const rs = await client.execute(
        'SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?',
        [s.keyspace],
        { prepare: true },
      );
      return rs.rowLength > 0;
    }
    case 'create-role': {
      const rs = await client.execute(
        'SELECT role FROM system_auth.roles WHERE role = ?',
        [s.role],
        {
          prepare: true,
        },
      );
      return rs.rowLength > 0;
    }
    case 'add-identity': {
      const rs = await client.execute(
        'SELECT role FROM system_auth.identity_to_role WHERE identity = ?',
        [s.identity],
        { prepare: true },
      );
      return rs.first()?.get('role') === s.role;
    }
    case 'grant': {
      const resource =
        s.table === undefined ? `data/${s.keyspace}` : `data/${s.keyspace}/${s.table}`;
      const rs = await client.execute(
        'SELECT permissions FROM system_auth.role_permissions WHERE role = ? AND resource = ?',
        [s.role, resource],
        { prepare: true },
      );
      const held = (rs.first()?.get('permissions') as string[] | null | undefined) ?? [];
      return held.includes(s.permission);
    }
  }
}

/**
 * Refresh: the statements still in effect, so that a grant revoked by hand shows as a change and the
 * next `up` restores it. When the node does not answer (stopped, or its process was dropped by the
 * same refresh), the recorded state stands.
 */
export async function observe(o: GrantsOutputs): Promise<GrantsOutputs> {
  try {
    return await withClient(o.admin, async (client) => {
      const live: CassandraStatement[] = [];
      for (const s of o.statements) if (await inEffect(client, s)) live.push(s);
      return { ...o, statements: live, cql: cqlOf(live) };
    });
  } catch {
    return o;
  }
}
