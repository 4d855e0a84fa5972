import { describe, expect, it } from 'vitest';
import {
  envProblems,
  envSchema,
  envValue,
  formatEnvProblems,
  kafkaEnvSchema,
  serverEnvSchema,
} from '../src/env-schema.ts';

const schema = envSchema(
  { ...serverEnvSchema.properties, ...kafkaEnvSchema.properties, GROUP: envValue.kafkaName },
  [...kafkaEnvSchema.required],
);

describe('envProblems', () => {
  it('accepts an environment the schema describes, ignoring unset entries', () => {
    expect(
      envProblems(schema, {
        KAFKA_BROKERS: 'kafka-0.kafka:9093, [::1]:9092',
        PORT: '8080',
        LOG_LEVEL: 'debug',
        KAFKA_TLS_SERVER_ID: 'spiffe://trellis.local/ns/data/sa/kafka',
        HOST: undefined,
      }),
    ).toEqual([]);
  });

  it('names a missing required variable', () => {
    expect(envProblems(schema, { PORT: '8080' })).toEqual([
      { variable: 'KAFKA_BROKERS', problem: 'is required but not set' },
    ]);
  });

  it('names a variable the service does not read (a misspelling)', () => {
    expect(envProblems(schema, { KAFKA_BROKERS: 'k:9092', KAFKA_BROKER: 'k:9092' })).toEqual([
      { variable: 'KAFKA_BROKER', problem: 'is not a variable this service reads' },
    ]);
  });

  it('names every malformed value with what it got', () => {
    const problems = envProblems(schema, {
      KAFKA_BROKERS: 'kafka',
      LOG_LEVEL: 'loud',
      PORT: 'eighty',
      GROUP: 'no spaces',
      KAFKA_TLS_SERVER_ID: 'kafka',
    });
    expect(problems.map((p) => p.variable).sort()).toEqual([
      'GROUP',
      'KAFKA_BROKERS',
      'KAFKA_TLS_SERVER_ID',
      'LOG_LEVEL',
      'PORT',
    ]);
    const text = formatEnvProblems(problems);
    expect(text).toContain('KAFKA_BROKERS must match pattern');
    expect(text).toContain('got "kafka"');
    expect(text).toContain(
      'LOG_LEVEL must be equal to one of the allowed values (fatal, error, warn, info, debug, trace), got "loud"',
    );
  });
});
