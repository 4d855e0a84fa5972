/**
 * Istio and Gateway API output checked against the real schemas: the CRD validators shipped in
 * @kubernetes-models (generated from the upstream CRDs) at run time, and, at compile time, that every
 * field we emit exists in the upstream types (an unknown field is a type error naming it).
 */
import { Gateway as KGateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import type { IGateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute as KHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { AuthorizationPolicy as KAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { PeerAuthentication as KPeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import type { IPeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import { RequestAuthentication as KRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { identityHeaders } from '@trellis/contracts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileGatewayApi,
  compileIstio,
  evaluateIstio,
  istioUpstreamHeaders,
  namespaceOf,
} from '../src/index.ts';
import type { IstioRequest, ValidModel } from '../src/index.ts';
import type {
  AuthorizationPolicy,
  Gateway,
  HttpRoute,
  PeerAuthentication,
  RequestAuthentication,
} from '../src/index.ts';
import { modelArb } from './arbitraries.ts';
import { example, referenceBound } from './fixtures.ts';
import type { NoUnknownFields } from './upstreamTypes.ts';

// Compile-time: each of these is `true` only if every emitted field exists upstream.
const fieldChecks: [
  NoUnknownFields<AuthorizationPolicy, IAuthorizationPolicy>,
  NoUnknownFields<PeerAuthentication, IPeerAuthentication>,
  NoUnknownFields<RequestAuthentication, IRequestAuthentication>,
  NoUnknownFields<Gateway, IGateway>,
  NoUnknownFields<HttpRoute, IHTTPRoute>,
] = [true, true, true, true, true];

function validateIstio(objects: ReturnType<typeof compileIstio>): void {
  for (const o of objects) {
    if (o.kind === 'AuthorizationPolicy') new KAuthorizationPolicy(o).validate();
    else if (o.kind === 'PeerAuthentication') new KPeerAuthentication(o).validate();
    else new KRequestAuthentication(o).validate();
  }
}

function validateGateway(objects: ReturnType<typeof compileGatewayApi>): void {
  for (const o of objects) {
    if (o.kind === 'Gateway') new KGateway(o).validate();
    else new KHTTPRoute(o).validate();
  }
}

describe('Kubernetes targets against the upstream schemas', () => {
  it('every emitted field exists upstream (checked by tsc)', () => {
    expect(fieldChecks).toEqual([true, true, true, true, true]);
  });

  it('the reference model validates against the Istio and Gateway API CRD schemas', () => {
    const model = referenceBound();
    expect(() => validateIstio(compileIstio(model, { region: 'eu' }))).not.toThrow();
    expect(() => validateGateway(compileGatewayApi(model, { region: 'eu' }))).not.toThrow();
  });

  it('the CRD validators do reject a bad object (the check has teeth)', () => {
    const bad = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'x' },
      spec: { action: 'PERMIT' },
    };
    expect(() =>
      new KAuthorizationPolicy(bad as unknown as IAuthorizationPolicy).validate(),
    ).toThrow();
  });

  it('generated models validate too', () => {
    fc.assert(
      fc.property(modelArb, (plain) => {
        const model = example(plain);
        validateIstio(compileIstio(model));
        validateGateway(compileGatewayApi(model));
      }),
      { numRuns: 200 },
    );
  }, 60_000);
});

describe('Istio output', () => {
  const model = referenceBound();
  const objs = compileIstio(model, { region: 'us' });

  it('is STRICT mesh-wide and per namespace, with default deny per namespace', () => {
    const pas = objs.filter((o) => o.kind === 'PeerAuthentication');
    expect(pas.map((p) => [p.metadata.namespace, p.spec.mtls.mode])).toEqual([
      ['istio-system', 'STRICT'],
      ['trellis', 'STRICT'],
    ]);
    const deny = objs.find(
      (o) => o.kind === 'AuthorizationPolicy' && o.metadata.name === 'allow-nothing',
    );
    expect(deny?.spec).toEqual({});
  });

  it('allows orders-api only from the ingress identity, with issuer and scope conditions', () => {
    const p = objs.find(
      (o): o is AuthorizationPolicy =>
        o.kind === 'AuthorizationPolicy' && o.metadata.name === 'orders-api',
    );
    expect(p?.spec.selector).toEqual({ matchLabels: { app: 'orders-api' } });
    expect(p?.spec.action).toBe('ALLOW');
    expect(p?.spec.rules).toEqual([
      {
        from: [{ source: { principals: ['trellis.local/ns/trellis/sa/ingress'] } }],
        to: [{ operation: { ports: ['8080'], methods: ['POST'], paths: ['/orders'] } }],
        when: [
          { key: 'request.auth.claims[iss]', values: ['https://localhost:8180/realms/trellis'] },
          { key: 'request.auth.claims[scope]', values: ['orders:write'] },
        ],
      },
      {
        from: [{ source: { principals: ['trellis.local/ns/trellis/sa/ingress'] } }],
        to: [{ operation: { ports: ['8080'], methods: ['GET'], paths: ['/orders/{*}'] } }],
        when: [
          { key: 'request.auth.claims[iss]', values: ['https://localhost:8180/realms/trellis'] },
          { key: 'request.auth.claims[scope]', values: ['orders:read'] },
        ],
      },
    ]);
    // Every ALLOW rule names its sources (the policy pack rejects an ALLOW without `from`).
    for (const o of objs)
      if (o.kind === 'AuthorizationPolicy')
        for (const r of o.spec.rules ?? []) expect(r.from?.length).toBeGreaterThan(0);
  });

  it('validates tokens on orders-api with the model issuer, audiences and JWKS', () => {
    const ra = objs.find((o): o is RequestAuthentication => o.kind === 'RequestAuthentication');
    expect(ra?.spec).toEqual({
      selector: { matchLabels: { app: 'orders-api' } },
      jwtRules: [
        {
          issuer: 'https://localhost:8180/realms/trellis',
          audiences: ['trellis-api'],
          jwksUri: 'https://localhost:8180/realms/trellis/protocol/openid-connect/certs',
          outputPayloadToHeader: 'x-jwt-payload',
          forwardOriginalToken: true,
        },
      ],
    });
  });

  // The services read the caller from identityHeaders.jwtPayload (service-platform identityDefaults)
  // and answer 401 without it: every route's backend must get it from its sidecar.
  const payloadHeadersOfRouteBackends = (m: ValidModel) => {
    const compiled = compileIstio(example(m));
    return Object.entries(m.routes)
      .filter(([, r]) => r.auth !== undefined)
      .map(([name, r]) => {
        const ras = compiled.filter(
          (o): o is RequestAuthentication =>
            o.kind === 'RequestAuthentication' &&
            o.metadata.namespace === namespaceOf(m, r.backend) &&
            o.spec.selector.matchLabels['app'] === r.backend,
        );
        const rules = ras.flatMap((ra) => ra.spec.jwtRules);
        return {
          name,
          rules: rules.length,
          headers: [...new Set(rules.map((x) => x.outputPayloadToHeader))],
        };
      });
  };

  it("forwards the verified payload to every route's backend in the header the services read", () => {
    expect(payloadHeadersOfRouteBackends(model)).toEqual([
      { name: 'create-order', rules: 1, headers: [identityHeaders.jwtPayload] },
      { name: 'get-order', rules: 1, headers: [identityHeaders.jwtPayload] },
    ]);
    let routes = 0;
    fc.assert(
      fc.property(modelArb, (m) => {
        for (const r of payloadHeadersOfRouteBackends(m)) {
          routes++;
          expect(r.rules, r.name).toBeGreaterThan(0);
          expect(r.headers, r.name).toEqual([identityHeaders.jwtPayload]);
        }
      }),
      { numRuns: 200 },
    );
    // Non-vacuous: the generated models do have authenticated routes.
    expect(routes).toBeGreaterThan(50);
  });

  it('hands the app the payload of the token it verified and the peer it authenticated', () => {
    const claims = {
      iss: 'https://localhost:8180/realms/trellis',
      aud: 'trellis-api',
      sub: 'user-1',
      scope: 'orders:read',
      exp: 1_800_000_300,
    };
    const ingress = 'spiffe://trellis.local/ns/trellis/sa/ingress';
    const req = (over: Partial<NonNullable<IstioRequest['http']>> = {}): IstioRequest => ({
      namespace: 'trellis',
      labels: { app: 'orders-api' },
      port: 8080,
      peer: { kind: 'cert', spiffeId: ingress, trusted: true },
      http: {
        method: 'GET',
        path: '/orders/42',
        token: { alg: 'RS256', signatureValid: true, claims },
        now: 1_800_000_000,
        ...over,
      },
    });
    const headers = istioUpstreamHeaders(objs, req());
    const payload = headers?.[identityHeaders.jwtPayload] ?? '';
    // base64url without padding, as Envoy's forward_payload_header sends it.
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))).toEqual(claims);
    expect(headers?.[identityHeaders.clientCert]).toBe(`Subject="";URI=${ingress}`);
    // APPEND_FORWARD: what the caller sent stays in front; the sidecar's element is the last one.
    const forged = 'URI=spiffe://trellis.local/ns/trellis/sa/admin';
    expect(istioUpstreamHeaders(objs, req({ xfcc: forged }))?.[identityHeaders.clientCert]).toBe(
      `${forged},Subject="";URI=${ingress}`,
    );
    // A request the sidecar refuses reaches nobody.
    const expired = req({ now: 1_800_001_000 });
    expect(evaluateIstio(objs, expired).allowed).toBe(false);
    expect(istioUpstreamHeaders(objs, expired)).toBeUndefined();
    // Without the field (the old compiler's output) the app gets no payload: the 401 of issue 12.
    const old = objs.map((o) =>
      o.kind === 'RequestAuthentication'
        ? {
            ...o,
            spec: {
              ...o.spec,
              jwtRules: o.spec.jwtRules.map((r) => ({ ...r, outputPayloadToHeader: '' })),
            },
          }
        : o,
    );
    expect(evaluateIstio(old, req()).allowed).toBe(true);
    expect(istioUpstreamHeaders(old, req())?.[identityHeaders.jwtPayload]).toBeUndefined();
  });

  it('differs between regions only in the region label', () => {
    const strip = (os: ReturnType<typeof compileIstio>) =>
      os.map((o) => ({
        ...o,
        metadata: { ...o.metadata, labels: { ...o.metadata.labels, 'trellis.dev/region': 'X' } },
      }));
    expect(strip(compileIstio(model, { region: 'us' }))).toEqual(
      strip(compileIstio(model, { region: 'eu' })),
    );
    expect(() => compileIstio(model, { region: 'mars' })).toThrow(/region 'mars' is not declared/);
  });
});

describe('Gateway API output', () => {
  it('routes each model route by host, method and path prefix to its backend', () => {
    const [gw, ...routes] = compileGatewayApi(referenceBound());
    expect(gw?.kind).toBe('Gateway');
    expect(
      gw?.kind === 'Gateway' && gw.spec.listeners.map((l) => [l.hostname, l.protocol, l.port]),
    ).toEqual([['localhost', 'HTTPS', 443]]);
    expect(routes.map((r) => r.kind === 'HTTPRoute' && r.spec.rules[0])).toEqual([
      {
        matches: [{ path: { type: 'Exact', value: '/orders' }, method: 'POST' }],
        backendRefs: [{ name: 'orders-api', port: 8080 }],
      },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/orders' }, method: 'GET' }],
        backendRefs: [{ name: 'orders-api', port: 8080 }],
      },
    ]);
  });
});
