/**
 * The body of the `CqlSchema` dynamic provider: a service's table DDL applied as platform-admin.
 * Imported by absolute path inside Pulumi's dynamic-provider host (see process.ts for why).
 */
import { Client } from 'cassandra-driver';
import { cassandraClientOptions } from '@trellis/local/harness';
import type { AdminConnection } from './cassandra-impl.ts';

/** Inputs of a schema: where Cassandra is, who applies it, and the statements. */
export interface SchemaInputs {
  admin: AdminConnection;
  localDataCenter: string;
  /** Idempotent DDL (`CREATE TABLE IF NOT EXISTS ...`), applied in order. */
  statements: string[];
}

/** Schema outputs: the statements in effect. */
export interface SchemaOutputs extends SchemaInputs {
  /** The statements as one text: what `diff` compares. */
  cql: string;
}

/** The diff key of a statement list. */
export function cqlOf(statements: readonly string[]): string {
  return statements.map((s) => s.replace(/\s+/g, ' ').trim()).join(';\n');
}

/** Apply every statement as platform-admin; a failure names the statement. */
export async function applySchema(i: SchemaInputs): Promise<SchemaOutputs> {
  const client = new Client(
    cassandraClientOptions(
      {
        host: i.admin.host,
        contactPoint: `${i.admin.host}:${i.admin.port}`,
        localDataCenter: i.localDataCenter,
        tls: true,
      },
      { cert: i.admin.cert, key: i.admin.key, ca: i.admin.ca },
    ),
  );
  try {
    await client.connect();
    for (const cql of i.statements) {
      try {
        await client.execute(cql);
      } catch (err) {
        throw new Error(`${cql.replace(/\s+/g, ' ').trim()}\n  failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  } finally {
    await client.shutdown().catch(() => undefined);
  }
  return { ...i, cql: cqlOf(i.statements) };
}
