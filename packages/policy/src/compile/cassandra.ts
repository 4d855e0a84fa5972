/**
 * Cassandra 5: CQL statements that create one LOGIN role per workload with a grant, map the workload's
 * SPIFFE ID to it with `ADD IDENTITY` (for MutualTlsAuthenticator with the SPIFFE certificate
 * validator, so no service holds a password), and grant permissions keyspace by keyspace or table by
 * table. Syntax (Cassandra 5.0 CQL grammar): `CREATE ROLE [IF NOT EXISTS] <role> WITH LOGIN = true`,
 * `ADD IDENTITY [IF NOT EXISTS] '<id>' TO ROLE '<role>'`, `GRANT <permission> ON KEYSPACE <ks> | TABLE
 * <ks>.<t> TO <role>` (one permission per statement).
 * https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/security.html
 *
 * GRANT needs the keyspace (or table) to exist: run the `keyspace` statements (or your own schema) first.
 */
import { spiffeId } from '../identity.ts';
import type { CassandraPermission } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';

/** One statement with what it means. */
export type CassandraStatement =
  | { kind: 'create-keyspace'; keyspace: string; cql: string }
  | { kind: 'create-role'; role: string; cql: string }
  | { kind: 'add-identity'; identity: string; role: string; cql: string }
  | {
      kind: 'grant';
      role: string;
      permission: CassandraPermission;
      keyspace: string;
      table?: string;
      cql: string;
    };

/** Options of `compileCassandra`. */
export interface CassandraOptions {
  /**
   * Also emit `CREATE KEYSPACE IF NOT EXISTS` for each declared keyspace, with this replication map,
   * e.g. `{ class: 'NetworkTopologyStrategy', datacenter1: 1 }`. @default no keyspace statements
   */
  replication?: Record<string, string | number>;
}

/** What `compileCassandra` returns. */
export interface CassandraArtefacts {
  statements: CassandraStatement[];
  /** All statements, one per line, ready for `cqlsh -f`. */
  cql: string;
}

const quoteString = (s: string) => `'${s.replace(/'/g, "''")}'`;
const quoteName = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** The role a workload logs in as (its name, as a quoted string role name). */
export function cassandraRole(workload: string): string {
  return workload;
}

/** Compiles the model's Cassandra grants to CQL. */
export function compileCassandra(
  model: BoundModel,
  opts: CassandraOptions = {},
): CassandraArtefacts {
  const statements: CassandraStatement[] = [];
  if (opts.replication) {
    const map = Object.entries(opts.replication)
      .map(([k, v]) => `${quoteString(k)}: ${typeof v === 'number' ? String(v) : quoteString(v)}`)
      .join(', ');
    for (const ks of Object.keys(model.cassandra.keyspaces))
      statements.push({
        kind: 'create-keyspace',
        keyspace: ks,
        cql: `CREATE KEYSPACE IF NOT EXISTS ${quoteName(ks)} WITH replication = {${map}};`,
      });
  }
  const identities = [...new Set(model.cassandra.grants.map((g) => g.identity))].sort();
  for (const w of identities) {
    const role = cassandraRole(w);
    const id = spiffeId(model, w);
    statements.push({
      kind: 'create-role',
      role,
      cql: `CREATE ROLE IF NOT EXISTS ${quoteString(role)} WITH LOGIN = true;`,
    });
    statements.push({
      kind: 'add-identity',
      identity: id,
      role,
      cql: `ADD IDENTITY IF NOT EXISTS ${quoteString(id)} TO ROLE ${quoteString(role)};`,
    });
  }
  for (const g of model.cassandra.grants) {
    const role = cassandraRole(g.identity);
    const resource =
      g.table === undefined
        ? `KEYSPACE ${quoteName(g.keyspace)}`
        : `TABLE ${quoteName(g.keyspace)}.${quoteName(g.table)}`;
    for (const p of g.permissions)
      statements.push({
        kind: 'grant',
        role,
        permission: p,
        keyspace: g.keyspace,
        ...(g.table !== undefined ? { table: g.table } : {}),
        cql: `GRANT ${p} ON ${resource} TO ${quoteString(role)};`,
      });
  }
  return { statements, cql: `${statements.map((s) => s.cql).join('\n')}\n` };
}
