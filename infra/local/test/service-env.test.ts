import { readFileSync } from 'node:fs';
import { loadConfig as loadLedgerConfig } from '@trellis/ledger/config';
import { loadConfig as loadOrdersApiConfig } from '@trellis/orders-api/config';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { bindOrThrow, parseModel, type ValidModel } from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import { localEnvironment } from '../src/context.ts';
import { planDataPorts } from '../src/data.ts';
import { serviceEnv, tracingEnv } from '../src/service-env.ts';

const plain = loadModelFile(referenceModelPath);
const model = bindOrThrow(plain, localEnvironment(8000, '/stack'), 'bind');
const data = planDataPorts(model);
const cassandra = { host: '127.0.0.1', port: 8042, spiffeId: '', localDataCenter: 'datacenter1' };
const layer = { egress: data.egress, cassandra };

describe('serviceEnv (local stack)', () => {
  it("points each service at its own sidecar's egress, with address translation and no migration", () => {
    expect(serviceEnv(model, 'orders-api', layer)).toEqual({
      LOG_LEVEL: 'info',
      IDENTITY_PAYLOAD_HEADER: 'x-jwt-payload',
      IDENTITY_REQUIRE_PEER: 'true',
      CASSANDRA_MIGRATE: 'false',
      CASSANDRA_CONTACT_POINTS: '127.0.0.1:8720',
      CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:8720',
      CASSANDRA_LOCAL_DC: 'datacenter1',
      KAFKA_BROKERS: '127.0.0.1:8721',
      KAFKA_TRANSLATE_ADDRESS: '127.0.0.1:8721',
      KAFKA_CLIENT_ID: 'orders-api',
    });
    expect(serviceEnv(model, 'ledger', layer)).toEqual({
      LOG_LEVEL: 'info',
      IDENTITY_PAYLOAD_HEADER: 'x-jwt-payload',
      IDENTITY_REQUIRE_PEER: 'true',
      CASSANDRA_MIGRATE: 'false',
      CASSANDRA_CONTACT_POINTS: '127.0.0.1:8710',
      CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:8710',
      CASSANDRA_LOCAL_DC: 'datacenter1',
      KAFKA_BROKERS: '127.0.0.1:8711',
      KAFKA_TRANSLATE_ADDRESS: '127.0.0.1:8711',
      KAFKA_CLIENT_ID: 'ledger',
      KAFKA_GROUP_ID: 'ledger',
    });
    // The batch writer: its consumer group from the model; the order queue is the Kafka intake
    // topic (ORDERS_QUEUE's default), so no queue variable.
    expect(serviceEnv(model, 'orders-writer', layer)).toEqual({
      LOG_LEVEL: 'info',
      IDENTITY_PAYLOAD_HEADER: 'x-jwt-payload',
      IDENTITY_REQUIRE_PEER: 'true',
      CASSANDRA_MIGRATE: 'false',
      CASSANDRA_CONTACT_POINTS: '127.0.0.1:8730',
      CASSANDRA_TRANSLATE_ADDRESS: '127.0.0.1:8730',
      CASSANDRA_LOCAL_DC: 'datacenter1',
      KAFKA_BROKERS: '127.0.0.1:8731',
      KAFKA_TRANSLATE_ADDRESS: '127.0.0.1:8731',
      KAFKA_CLIENT_ID: 'orders-writer',
      KAFKA_GROUP_ID: 'orders-writer',
    });
  });

  it("gives an environment that each service's own loader accepts (with LocalService's HOST and PORT)", () => {
    const at = { HOST: '127.0.0.1', PORT: '8300' };
    const orders = loadOrdersApiConfig({ ...serviceEnv(model, 'orders-api', layer), ...at });
    expect(orders.app.kafka.translateTo).toBe('127.0.0.1:8721');
    expect(orders.app.identity?.requirePeer).toBe(true);
    const ledger = loadLedgerConfig({ ...serviceEnv(model, 'ledger', layer), ...at });
    expect(ledger.app.groupId).toBe('ledger');
    expect(ledger.app.migrate).toBe(false);
  });

  it('refuses a workload no Trellis service implements', () => {
    expect(() => serviceEnv(model, 'ingress', layer)).toThrow(
      'workloads.ingress: no Trellis service implements it (services: orders-api, orders-writer, ledger)',
    );
  });

  it('refuses a model that does not route the service to a data store it needs', () => {
    const data0 = structuredClone(plain) as Record<string, unknown> & ValidModel;
    const ledger = data0.workloads.ledger as { calls: string[] };
    ledger.calls = ['kafka'];
    data0.cassandra.grants = data0.cassandra.grants.filter((g) => g.identity !== 'ledger');
    const r = parseModel(JSON.stringify(data0));
    if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.reason}`).join('; '));
    const egress = planDataPorts(
      bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'bind'),
    ).egress;
    expect(() => serviceEnv(r.model, 'ledger', { egress, cassandra })).toThrow(
      'workloads.ledger.calls: the ledger service needs cassandra, but the model gives it no route there',
    );
  });
});

describe('tracingEnv (local stack, ADR 0023)', () => {
  it("points each service's OTLP export at its own sidecar's telemetry egress, by full URL", () => {
    expect(tracingEnv(model, 'orders-api')).toEqual({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:8452/v1/traces',
      OTEL_SERVICE_NAME: 'orders-api',
    });
    expect(tracingEnv(model, 'ledger').OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).toBe(
      'http://127.0.0.1:8451/v1/traces',
    );
  });

  it('sets nothing without a tracing block, nor for the edge (no app)', () => {
    const r = parseModel(
      readFileSync(referenceModelPath, 'utf8').replace(/^tracing:\n( {2}.*\n)+/m, ''),
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.model.tracing).toBeUndefined();
    expect(
      tracingEnv(bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'bind'), 'ledger'),
    ).toEqual({});
    expect(tracingEnv(model, 'ingress')).toEqual({});
  });
});
