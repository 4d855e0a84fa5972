/** Checks of the data layer: Cassandra keyspaces and grants, Kafka topics and consumer groups. */
import { own } from '../identity.ts';
import { cassandraSystemKeyspaces, cqlName, kafkaName } from '../patterns.ts';
import type { Model } from '../schema.ts';
import { checkIdentity } from './common.ts';
import type { Err } from './common.ts';

const system = cassandraSystemKeyspaces as readonly string[];

/** A grant's keyspace: never a system keyspace or a wildcard; a declared keyspace (and table). */
function checkGrantTarget(
  m: Model,
  g: Model['cassandra']['grants'][number],
  base: PropertyKey[],
  err: Err,
): void {
  if (system.includes(g.keyspace.toLowerCase()))
    err(
      [...base, 'keyspace'],
      `grants on Cassandra system keyspace '${g.keyspace}' are not allowed`,
    );
  else if (g.keyspace.includes('*'))
    err([...base, 'keyspace'], 'wildcard keyspaces are not allowed: name each keyspace');
  else {
    const ks = own(m.cassandra.keyspaces, g.keyspace);
    if (!ks)
      err(
        [...base, 'keyspace'],
        `unknown reference: keyspace '${g.keyspace}' is not declared in cassandra.keyspaces`,
      );
    else if (g.table !== undefined && !ks.tables.includes(g.table))
      err(
        [...base, 'table'],
        `unknown reference: table '${g.table}' is not declared in cassandra.keyspaces.${g.keyspace}.tables`,
      );
  }
}

/** Keyspace and table names; grants to workloads that call Cassandra, on declared non-system data. */
export function checkCassandra(m: Model, err: Err): void {
  for (const [ks, def] of Object.entries(m.cassandra.keyspaces)) {
    const base = ['cassandra', 'keyspaces', ks];
    if (system.includes(ks.toLowerCase()))
      err(base, `'${ks}' is a Cassandra system keyspace and cannot be declared`);
    else if (!cqlName.re.test(ks)) err(base, cqlName.reason);
    def.tables.forEach((t, i) => {
      if (!cqlName.re.test(t)) err([...base, 'tables', i], cqlName.reason);
    });
  }
  m.cassandra.grants.forEach((g, i) => {
    const base = ['cassandra', 'grants', i];
    checkIdentity(m, g.identity, 'cassandra', [...base, 'identity'], err);
    checkGrantTarget(m, g, base, err);
    if (g.table !== undefined)
      g.permissions.forEach((p, j) => {
        // CQL: CREATE applies to ALL KEYSPACES and KEYSPACE only (it creates tables in the keyspace).
        if (p === 'CREATE')
          err([...base, 'permissions', j], 'CREATE applies to a keyspace, not a table');
      });
  });
}

/** Topic and group names; producers and consumers are workloads that call Kafka. */
export function checkKafka(m: Model, err: Err): void {
  for (const [topic, t] of Object.entries(m.kafka.topics)) {
    const base = ['kafka', 'topics', topic];
    if (!kafkaName.re.test(topic) || topic === '.' || topic === '..') err(base, kafkaName.reason);
    t.producers.forEach((p, i) => checkIdentity(m, p, 'kafka', [...base, 'producers', i], err));
    t.consumers.forEach((c, i) => {
      checkIdentity(m, c.identity, 'kafka', [...base, 'consumers', i, 'identity'], err);
      if (c.group.includes('*'))
        err([...base, 'consumers', i, 'group'], 'wildcard groups are not allowed: name each group');
      else if (!kafkaName.re.test(c.group))
        err([...base, 'consumers', i, 'group'], kafkaName.reason);
    });
  }
}
