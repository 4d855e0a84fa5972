/**
 * Issue 12, defect 2, end to end without a cluster: the Istio objects compiled for a cluster, the
 * headers the destination sidecar hands the app for a request it lets through (the Istio evaluator),
 * and the service's own identity check (service-platform's `authenticate`, configured from the
 * environment the k8s platform gives the service). A request the mesh allows must reach the service
 * with a caller, or every request gets 401 on Kubernetes.
 */
import { identityHeaders } from '@trellis/contracts';
import { istioUpstreamHeaders, spiffeId } from '@trellis/policy';
import type { IstioRequest, IstioResource } from '@trellis/policy';
import { identityFromEnv } from '@trellis/service-platform/config';
import { Env } from '@trellis/service-platform/env';
import type { IdentityEnv } from '@trellis/service-platform/env-schema';
import { authenticate, createHttpApp } from '@trellis/service-platform/http';
import { identityDefaults } from '@trellis/service-platform/identity';
import { afterAll, describe, expect, it } from 'vitest';
import { compileForCluster } from '../src/k8s/compile.ts';
import { k8sServiceEnv } from '../src/k8s/serviceEnv.ts';
import { loadModelFile, referenceModelPath } from '../src/model.ts';

const issuer = 'https://auth.us.trellis.example/realms/trellis';
const compiled = compileForCluster(loadModelFile(referenceModelPath), {
  region: 'us',
  issuers: { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } },
  hosts: { localhost: 'api.us.trellis.example' },
  inClusterKeycloak: true,
});
const gateway = spiffeId(compiled.model, 'ingress');
const now = Math.floor(Date.now() / 1000);
const claims = {
  iss: issuer,
  aud: 'trellis-api',
  sub: 'user-1',
  azp: 'trellis-cli',
  scope: 'openid orders:read',
  exp: now + 300,
};

/** GET /orders/42 on orders-api, as its sidecar sees it. */
const request = (peer: IstioRequest['peer']): IstioRequest => ({
  namespace: 'trellis',
  labels: { app: 'orders-api' },
  port: 8080,
  peer,
  http: {
    method: 'GET',
    path: '/orders/42',
    token: { alg: 'RS256', signatureValid: true, claims },
    now,
  },
});

// orders-api's identity settings, read by the service's loader from the env the platform gives it.
const env = k8sServiceEnv({
  model: compiled.model,
  workload: 'orders-api',
  region: 'us',
  cassandraContactPoint: 'trellis-us-service.trellis-cassandra.svc.cluster.local:9042',
  cassandraServerName: 'trellis-us-service.trellis-cassandra.svc.cluster.local',
  kafkaBootstrap: 'trellis-kafka-bootstrap.trellis-kafka.svc.cluster.local:9093',
  dataplane: 'sidecar',
});
const identity = identityFromEnv(new Env<IdentityEnv>(env as Record<string, string>));
const app = createHttpApp({ service: 'orders-api', log: false, readiness: () => ({}) });
app.get('/orders/:id', { onRequest: authenticate(identity) }, async (req) => ({
  caller: req.caller,
}));
afterAll(() => app.close());

/** What the service answers when the sidecar forwards `headers`. */
async function serve(headers: Record<string, string> | undefined) {
  expect(headers, 'the mesh must let the request through').toBeDefined();
  const res = await app.inject({ method: 'GET', url: '/orders/42', headers: headers ?? {} });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

describe('Istio → service identity (issue 12, defect 2)', () => {
  it('both sides use the one header name of @trellis/contracts', () => {
    expect(identity.payloadHeader).toBe(identityHeaders.jwtPayload);
    expect(identityDefaults.payloadHeader).toBe(identityHeaders.jwtPayload);
    expect(identity.xfccHeader).toBe(identityHeaders.clientCert);
    expect(identity.requirePeer).toBe(true);
  });

  it('a request the mesh allows reaches the service with its user and its mesh peer', async () => {
    const headers = istioUpstreamHeaders(
      compiled.mesh,
      request({ kind: 'cert', spiffeId: gateway, trusted: true }),
    );
    expect(await serve(headers)).toEqual({
      status: 200,
      body: {
        caller: {
          subject: 'user-1',
          issuer,
          clientId: 'trellis-cli',
          scopes: ['openid', 'orders:read'],
          peer: gateway,
        },
      },
    });
  });

  it('the old RequestAuthentication (no outputPayloadToHeader) lets it through to a 401', async () => {
    const old: IstioResource[] = compiled.mesh.map((o) =>
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
    const headers = istioUpstreamHeaders(
      old,
      request({ kind: 'cert', spiffeId: gateway, trusted: true }),
    );
    expect(await serve(headers)).toMatchObject({
      status: 401,
      body: { error: 'unauthenticated', message: `missing ${identityHeaders.jwtPayload} header` },
    });
  });

  it('a caller-supplied XFCC does not make the service see another peer', async () => {
    const forged = `URI=${spiffeId(compiled.model, 'ledger')}`;
    const req = request({ kind: 'cert', spiffeId: gateway, trusted: true });
    const headers = istioUpstreamHeaders(compiled.mesh, {
      ...req,
      http: { ...(req.http as NonNullable<IstioRequest['http']>), xfcc: forged },
    });
    const { status, body } = await serve(headers);
    expect(status).toBe(200);
    expect((body.caller as { peer: string }).peer).toBe(gateway);
  });
});
