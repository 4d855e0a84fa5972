import * as pulumi from '@pulumi/pulumi';
import { bindOrThrow, compileIstioTelemetry } from '@trellis/policy';
import type { IstioTelemetryArtefacts } from '@trellis/policy';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModelFile, referenceModelPath } from '../src/model.ts';
import { RecordingMocks, settle } from './support/mocks.ts';

const mocks = new RecordingMocks();
let telemetry: typeof import('../src/k8s/telemetry.ts');
let istio: typeof import('../src/k8s/istio.ts');

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, 'trellis-test', 'unit', false);
  telemetry = await import('../src/k8s/telemetry.ts');
  istio = await import('../src/k8s/istio.ts');
});

const bound = bindOrThrow(
  loadModelFile(referenceModelPath),
  { kind: 'example', baseDir: '/srv' },
  'example plan',
);
const compiled = (): IstioTelemetryArtefacts =>
  compileIstioTelemetry(bound, {
    rootNamespace: 'istio-system',
    tracing: { service: 'otel.observability.svc.cluster.local', port: 4317, samplingPercentage: 5 },
  });

describe('MeshTelemetry', () => {
  it('applies the compiled Telemetry once, and says which providers it turns on', async () => {
    const t = new telemetry.MeshTelemetry('mesh', {
      compiled: compiled(),
      rootNamespace: 'istio-system',
    });
    await settle(mocks);
    expect(mocks.kind('Telemetry').map((x) => x.name)).toEqual(['mesh-telemetry']);
    const providers = await new Promise<string[]>((resolve) => t.providers.apply(resolve));
    expect(providers).toEqual(['trellis-audit-log', 'trellis-otel']);
  });

  it('refuses a Telemetry naming a provider the mesh config lacks, or placed outside the root namespace', () => {
    const c = compiled();
    const noTracer = { ...c, extensionProviders: c.extensionProviders.slice(0, 1) };
    expect(
      () => new telemetry.MeshTelemetry('a', { compiled: noTracer, rootNamespace: 'istio-system' }),
    ).toThrow(
      'MeshTelemetry a: compiled.telemetry names provider "trellis-otel", which compiled.extensionProviders does not define (trellis-audit-log)',
    );
    expect(
      () => new telemetry.MeshTelemetry('b', { compiled: c, rootNamespace: 'mesh-root' }),
    ).toThrow(
      'MeshTelemetry b: compiled.telemetry must sit in mesh-root without a selector to apply mesh-wide, got namespace istio-system',
    );
  });
});

describe('Istio extension providers', () => {
  it('refuses two providers of one name, naming the index', () => {
    const [log] = compiled().extensionProviders;
    expect(
      () =>
        new istio.Istio('dup', {
          trustDomain: 'trellis.local',
          cluster: 'c1',
          meshId: 'trellis-local',
          network: 'net-us',
          cacerts: {},
          operators: 'preinstalled',
          extensionProviders: [log!, log!],
        }),
    ).toThrow(
      'Istio dup: extensionProviders[1].name "trellis-audit-log" must be a unique lowercase name',
    );
  });
});
