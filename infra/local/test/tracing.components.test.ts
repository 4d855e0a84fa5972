// The trace pipeline's components (ADR 0023): what they write from the bound model (pure), and that
// they refuse a model without `tracing` before creating anything, naming it (Pulumi mocks).
import * as pulumi from '@pulumi/pulumi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalMeshCa } from '@trellis/components/local/pki';
import { RecordingMocks } from '@trellis/components/testing/mocks';
import { bindOrThrow, parseModel, type BoundModel } from '@trellis/policy';
import { localEnvironment } from '../src/context.ts';

const mocks = new RecordingMocks({ fallback: () => ({}) });
let collector: typeof import('@trellis/components/local/otel-collector');
let jaeger: typeof import('@trellis/components/local/jaeger');
const text = readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8');

function bound(yaml: string): BoundModel {
  const r = parseModel(yaml);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'the local stack');
}

const model = bound(text);
const noTracing = bound(text.replace(/^tracing:\n( {2}.*\n)+/m, ''));
// Never used: every case throws before a child.
const ca = () => ({}) as LocalMeshCa;

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, 'trellis-tracing-test', 'unit', false);
  collector = await import('@trellis/components/local/otel-collector');
  jaeger = await import('@trellis/components/local/jaeger');
});

describe('LocalOtelCollector and LocalJaeger (ADR 0023)', () => {
  it('write their configs from the binding: SVIDs under pki/, every listener on 127.0.0.1', () => {
    const svid = { cert: '/c/cert.pem', key: '/c/key.pem', bundle: '/c/bundle.pem' };
    const c = JSON.parse(collector.collectorConfig(model, svid)) as {
      receivers: { otlp: { protocols: { http: { endpoint: string } } } };
      exporters: { otlp: { endpoint: string } };
    };
    expect(c.receivers.otlp.protocols.http.endpoint).toBe('127.0.0.1:8421');
    expect(c.exporters.otlp.endpoint).toBe('127.0.0.1:8423');
    const j = JSON.parse(jaeger.jaegerConfig(model)) as {
      extensions: { jaeger_query: { http: { endpoint: string } } };
      receivers: { otlp: { protocols: { grpc: { tls: { cert_file: string } } } } };
    };
    expect(j.extensions.jaeger_query.http.endpoint).toBe('127.0.0.1:8424');
    expect(j.receivers.otlp.protocols.grpc.tls.cert_file).toBe('/stack/pki/jaeger/cert.pem');
    const front = collector.collectorFrontArtefacts(model, '/stack/run/otel-collector/front', svid);
    expect(front.bootstrap.static_resources.listeners[0]?.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8420 },
    });
    expect(Object.keys(front.sdsFiles)).toEqual([
      '/stack/run/otel-collector/front/sds/svid.yaml',
      '/stack/run/otel-collector/front/sds/trust-bundle.yaml',
    ]);
  });

  it('refuse a model without tracing, naming it', () => {
    const why =
      'model.binding.tracing must place the collector and Jaeger (declare tracing.collector in the model, and bind it to a local environment)';
    expect(
      () => new collector.LocalOtelCollector('c1', { model: noTracing, ca: ca(), dir: '/run/c' }),
    ).toThrow(`c1: ${why}`);
    expect(
      () => new jaeger.LocalJaeger('j1', { model: noTracing, ca: ca(), dir: '/run/j' }),
    ).toThrow(
      'j1: model.binding.tracing.jaeger must place Jaeger (declare tracing.collector in the model, and bind it to a local environment)',
    );
  });
});
