/**
 * The data stores' audit logs as configured: Cassandra's `audit_logging_options` and its logback
 * appender, Kafka's authorizer logger, Keycloak's event log level.
 */
import { describe, expect, it } from 'vitest';
import {
  CASSANDRA_LOGBACK,
  cassandraAuditLogging,
  cassandraConfig,
} from '../src/harness/cassandra-config.ts';
import { KAFKA_LOG4J2 } from '../src/harness/kafka-config.ts';
import { keycloakStartArgs } from '../src/toolchain/keycloak.ts';

const ports = { nativePort: 9042, storagePort: 7000 };

describe('Cassandra audit log', () => {
  it('logs DML, DDL, DCL and logins outside the system keyspaces with FileAuditLogger', () => {
    const cfg = cassandraConfig({ dir: '/d', audit: true }, '127.0.0.1', ports);
    expect(cfg.audit_logging_options).toEqual({
      enabled: true,
      logger: [{ class_name: 'FileAuditLogger' }],
      excluded_keyspaces:
        'system,system_auth,system_distributed,system_schema,system_traces,system_views,system_virtual_schema',
      included_categories: 'DML,DDL,DCL,AUTH',
    });
    // An include list would drop logins (their keyspace is null): none is set.
    expect(cassandraAuditLogging()).not.toHaveProperty('included_keyspaces');
  });

  it('is off unless asked', () => {
    expect(cassandraConfig({ dir: '/d' }, '127.0.0.1', ports)).not.toHaveProperty(
      'audit_logging_options',
    );
  });

  it('sends the audit logger alone to logs/audit.log, one event per line', () => {
    expect(CASSANDRA_LOGBACK).toContain('<file>${cassandra.logdir}/audit.log</file>');
    expect(CASSANDRA_LOGBACK).toContain(
      '<logger name="org.apache.cassandra.audit.FileAuditLogger" level="INFO" additivity="false">',
    );
  });
});

describe('Kafka authorizer log', () => {
  it('logs allowed (DEBUG) and denied (INFO) decisions to their own file', () => {
    expect(KAFKA_LOG4J2).toContain('logger.authorizer.name = kafka.authorizer.logger');
    expect(KAFKA_LOG4J2).toContain('logger.authorizer.level = DEBUG');
    expect(KAFKA_LOG4J2).toContain('logger.authorizer.additivity = false');
    expect(KAFKA_LOG4J2).toContain(
      'appender.authorizer.fileName = ${sys:kafka.logs.dir}/kafka-authorizer.log',
    );
  });
});

describe('Keycloak event log', () => {
  it("logs the jboss-logging listener's success events (DEBUG) too", () => {
    const level = keycloakStartArgs('/h', 1, 2).find((a) => a.startsWith('--log-level='));
    expect(level?.split(',')).toContain('org.keycloak.events:debug');
  });
});
