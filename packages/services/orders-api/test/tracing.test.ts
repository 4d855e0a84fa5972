/**
 * orders-api's tracing wiring: the environment turns it on (and the schema accepts the standard OTEL
 * variables), and a request's SERVER span continues the sidecar's `traceparent` with the route and the
 * verified subject. The stores are real but down (closed ports), so the read is a 503. The produce
 * span and its header are tested in the platform (tracing.test.ts) and end to end in
 * infra/local/test/services.component.test.ts.
 */
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { freePort } from '@trellis/local/harness';
import { envProblems } from '@trellis/service-platform/env-schema';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { ordersApiEnvSchema } from '../src/env.ts';

const base = { CASSANDRA_CONTACT_POINTS: '127.0.0.1:9042', KAFKA_BROKERS: '127.0.0.1:9092' };
const otel = {
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces',
  OTEL_SERVICE_NAME: 'orders-api',
};

describe('orders-api tracing', () => {
  it('is configured by the standard OTEL variables, and off without them', () => {
    expect(envProblems(ordersApiEnvSchema, { ...base, ...otel })).toEqual([]);
    expect(loadConfig({ ...base, ...otel }).app.tracing).toEqual({
      serviceName: 'orders-api',
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    expect(loadConfig(base).app.tracing).toBeUndefined();
    expect(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'localhost' })).toThrow(
      'invalid configuration: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL, got "localhost"',
    );
  });

  it('traces GET /orders/:id under the incoming traceparent, with the subject and the status', async () => {
    const exporter = new InMemorySpanExporter();
    const app = await buildApp({
      cassandra: {
        contactPoints: [`127.0.0.1:${await freePort()}`],
        localDataCenter: 'datacenter1',
      },
      kafka: { brokers: [`127.0.0.1:${await freePort()}`], clientId: 'orders-api-test' },
      log: false,
      tracing: { serviceName: 'orders-api', exporter },
    });
    await app.ready();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await app.inject({
      method: 'GET',
      url: '/orders/0b8a6f8e-3c1e-4c59-9a51-6f0f0c1b2d3e',
      headers: {
        traceparent: `00-${traceId}-b7ad6b7169203331-01`,
        'x-jwt-payload': Buffer.from('{"sub":"alice"}').toString('base64url'),
      },
    });
    expect(res.statusCode).toBe(503);
    // Probes and metrics are not traced.
    await app.inject({ method: 'GET', url: '/metrics' });
    await app.inject({ method: 'GET', url: '/readyz' });
    await app.tracing.flush();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['GET /orders/:id']);
    const [span] = spans;
    expect(span?.spanContext().traceId).toBe(traceId);
    expect(span?.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(span?.attributes).toMatchObject({
      'http.route': '/orders/:id',
      'http.response.status_code': 503,
      'user.id': 'alice',
    });
    expect(span?.status.code).toBe(2);
    await app.close();
  });
});
