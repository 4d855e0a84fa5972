/**
 * The Kubernetes side of the audit trail and tracing: Istio's access-log provider carries the same
 * audit fields as the local sidecars (one definition), with the claims where Istio's jwt_authn keeps
 * them, and the mesh-wide Telemetry turns it (and tracing, when asked) on.
 */
import { describe, expect, it } from 'vitest';
import {
  compileIstioTelemetry,
  httpAuditFields,
  istioAccessLogFormat,
  istioAuditLogProvider,
  istioTracingProvider,
  tcpAuditFields,
} from '../src/index.ts';
import type { BoundModel } from '../src/index.ts';
import { referenceBound } from './fixtures.ts';

const model = referenceBound();
const tracing = {
  service: 'otel-collector.observability.svc.cluster.local',
  port: 4317,
  samplingPercentage: 10,
};

describe('Istio access log format', () => {
  const format = istioAccessLogFormat(model);

  it('carries every audit field of the local sidecars, from the same definition', () => {
    const { jwt: _localJwt, jwtFailure: _failure, ...http } = httpAuditFields({ jwt: {} });
    expect(format).toMatchObject(http);
    expect(format).toMatchObject({
      source: 'envoy',
      rbac: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_engine_result)%',
      rbacPolicy: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%',
      peer: '%DOWNSTREAM_PEER_URI_SAN%',
      requestId: '%REQ(x-request-id)%',
    });
    // The TCP fields under their own names where they would clash with the HTTP ones.
    const tcp = tcpAuditFields();
    expect(format).toMatchObject({
      upstreamPeer: tcp.upstreamPeer,
      tcpRbac: tcp.rbac,
      tcpRbacPolicy: tcp.rbacPolicy,
      bytesIn: tcp.bytesIn,
      bytesOut: tcp.bytesOut,
    });
  });

  it("logs the claims Istio's jwt_authn verified (its `payload` metadata), and which sidecar wrote the line", () => {
    const claim = (c: string) => `%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:${c})%`;
    expect(format.jwt).toEqual({
      payload: { iss: claim('iss'), sub: claim('sub'), azp: claim('azp'), scope: claim('scope') },
    });
    expect(format.workload).toBe('%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%');
    expect(format.namespace).toBe('%ENVIRONMENT(POD_NAMESPACE)%');
    // Istio sets no failed_status_in_metadata: there is no refusal message to log.
    expect(format).not.toHaveProperty('jwtFailure');
  });

  it("logs another provider's scope claim under its own name", () => {
    const kc = model.identityProviders.keycloak;
    expect(kc).toBeDefined();
    const two = {
      ...model,
      identityProviders: { ...model.identityProviders, okta: { ...kc, scopeClaim: 'scp' } },
    } as BoundModel;
    const jwt = istioAccessLogFormat(two).jwt as { payload: Record<string, string> };
    expect(jwt.payload.scope).toMatch(/:payload:scope\)%$/);
    expect(jwt.payload.scp).toMatch(/:payload:scp\)%$/);
  });

  it('logs no header that carries a token, and the path without its query string', () => {
    const text = JSON.stringify(format).toLowerCase();
    expect(text).not.toContain('authorization');
    expect(text).not.toContain('x-jwt-payload');
    expect(text).not.toMatch(/%req\(:path\)%/);
    expect(format.path).toBe('%PATH(NQ)%');
  });
});

describe('compileIstioTelemetry', () => {
  it('turns the access log on mesh-wide, on the inbound side, to stdout', () => {
    const { extensionProviders, telemetry } = compileIstioTelemetry(model, {
      rootNamespace: 'istio-system',
      region: 'us',
    });
    expect(extensionProviders).toEqual([
      {
        name: istioAuditLogProvider,
        envoyFileAccessLog: {
          path: '/dev/stdout',
          logFormat: { labels: istioAccessLogFormat(model) },
        },
      },
    ]);
    expect(telemetry).toEqual({
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: {
        name: 'mesh-default',
        namespace: 'istio-system',
        labels: { 'app.kubernetes.io/managed-by': 'trellis', 'trellis.dev/region': 'us' },
      },
      spec: {
        accessLogging: [
          { providers: [{ name: istioAuditLogProvider }], match: { mode: 'SERVER' } },
        ],
      },
    });
  });

  it('traces to the OpenTelemetry collector with the sampling given', () => {
    const { extensionProviders, telemetry } = compileIstioTelemetry(model, {
      rootNamespace: 'istio-system',
      tracing,
    });
    expect(extensionProviders).toContainEqual({
      name: istioTracingProvider,
      opentelemetry: { service: tracing.service, port: 4317 },
    });
    expect(telemetry.spec.tracing).toEqual([
      { providers: [{ name: istioTracingProvider }], randomSamplingPercentage: 10 },
    ]);
    // Every provider the Telemetry names is one the mesh config defines.
    const names = new Set(extensionProviders.map((p) => p.name));
    for (const p of [
      ...telemetry.spec.accessLogging.flatMap((a) => a.providers),
      ...(telemetry.spec.tracing ?? []).flatMap((t) => t.providers),
    ])
      expect(names).toContain(p.name);
  });

  it.each([
    [
      { samplingPercentage: 100.5 },
      /tracing\.samplingPercentage must be a number from 0 to 100, got 100\.5/,
    ],
    [
      { samplingPercentage: -1 },
      /tracing\.samplingPercentage must be a number from 0 to 100, got -1/,
    ],
    [{ port: 0 }, /tracing\.port must be a port number \(1-65535\), got 0/],
    [{ service: 'http://collector:4317' }, /tracing\.service must be a host name/],
  ])('refuses %o, naming the field', (patch, message) => {
    expect(() =>
      compileIstioTelemetry(model, {
        rootNamespace: 'istio-system',
        tracing: { ...tracing, ...patch },
      }),
    ).toThrow(message);
  });

  it('accepts the bounds and a namespaced service', () => {
    for (const samplingPercentage of [0, 0.01, 100])
      expect(() =>
        compileIstioTelemetry(model, {
          rootNamespace: 'istio-system',
          tracing: { ...tracing, samplingPercentage, service: 'observability/otel-collector' },
        }),
      ).not.toThrow();
  });
});
