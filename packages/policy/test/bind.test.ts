/**
 * `bind`: each environment's changes to the model and its placement of every workload, the errors
 * (always with a path), and the collision check of the allocators.
 */
import { describe, expect, it } from 'vitest';
import { bind, bindOrThrow, envoyOptions, peerPort, validateModel } from '../src/index.ts';
import type {
  BoundModel,
  Environment,
  KubernetesEnvironment,
  LocalEnvironment,
  PolicyError,
  ValidModel,
} from '../src/index.ts';
import { collisions } from '../src/bind/allocator.ts';
import { referenceData, referenceModel } from './fixtures.ts';

const local = (basePort = 8000): LocalEnvironment => ({
  kind: 'local',
  basePort,
  stackDir: '/stack',
  keycloak: { baseUrl: `https://localhost:${basePort + 180}` },
});

const issuer = 'https://auth.us.example.com/realms/trellis';
const cluster: KubernetesEnvironment = {
  kind: 'kubernetes',
  issuers: { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } },
  hosts: { localhost: 'api.us.example.com' },
  gateway: { namespace: 'trellis-gateway', serviceAccount: 'trellis-nginx', port: 443 },
  dataServices: {
    cassandra: { address: 'trellis-us-service.trellis-cassandra.svc.cluster.local', port: 9042 },
    kafka: { address: 'trellis-kafka-bootstrap.trellis-kafka.svc.cluster.local', port: 9093 },
  },
};

function ok(model: ValidModel, env: Environment): BoundModel {
  const r = bind(model, env);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.model;
}

function errors(model: ValidModel, env: Environment): PolicyError[] {
  const r = bind(model, env);
  if (r.ok) throw new Error('bind succeeded');
  return r.errors;
}

/** Replaces the ports of workload `w` in plain model data. */
function setPorts(
  d: ReturnType<typeof referenceData>,
  w: string,
  ports: { name: string; port: number; protocol: 'http' | 'grpc' | 'tcp' }[],
): void {
  const spec = d.workloads[w];
  if (!spec) throw new Error(`no workload ${w}`);
  spec.ports = ports;
}

/** The reference model with `edit` applied to its plain data, validated. */
function variant(edit: (d: ReturnType<typeof referenceData>) => void): ValidModel {
  const d = referenceData();
  edit(d);
  const r = validateModel(d);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.model;
}

describe('bind to local', () => {
  it('leaves the model as written at the local stack’s Keycloak, and moves the issuer for another', () => {
    const model = referenceModel();
    const at8000 = ok(model, local());
    expect(at8000.identityProviders).toEqual(model.identityProviders);
    const e2e = ok(model, local(28_000));
    expect(e2e.identityProviders.keycloak).toMatchObject({
      issuer: 'https://localhost:28180/realms/trellis',
      jwksUri: 'https://localhost:28180/realms/trellis/protocol/openid-connect/certs',
      audiences: ['trellis-api'],
    });
    expect(e2e.binding.identityProviders.keycloak).toEqual({
      issuer: 'https://localhost:28180/realms/trellis',
      jwksUri: 'https://localhost:28180/realms/trellis/protocol/openid-connect/certs',
      jwks: { address: '127.0.0.1', port: 28_180, tls: true },
      keycloak: { baseUrl: 'https://localhost:28180', realm: 'trellis' },
    });
    expect(e2e.routes).toEqual(model.routes);
  });

  it('fetches the JWKS over TLS when the stack’s Keycloak speaks https', () => {
    const b = ok(referenceModel(), {
      ...local(),
      keycloak: { baseUrl: 'https://localhost:8543', caFile: '/stack/pki/root.pem' },
    });
    expect(b.identityProviders.keycloak?.issuer).toBe('https://localhost:8543/realms/trellis');
    expect(b.binding.identityProviders.keycloak?.jwks).toEqual({
      address: '127.0.0.1',
      port: 8543,
      tls: true,
      caFile: '/stack/pki/root.pem',
    });
    expect(envoyOptions(b, 'orders-api').jwks).toEqual({
      keycloak: { address: '127.0.0.1', port: 8543, tls: true, caFile: '/stack/pki/root.pem' },
    });
  });

  it('places every workload on loopback from the base, with its SVID files and sidecar dir', () => {
    const w = ok(referenceModel(), local()).binding.workloads['orders-api'];
    expect(w).toEqual({
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/orders-api',
      edge: false,
      inbound: { http: { address: '127.0.0.1', port: 8620 } },
      app: { http: { address: '127.0.0.1', port: 8820 } },
      admin: { address: '127.0.0.1', port: 8502 },
      // The metrics listener: basePort + 550 + the workload's sorted position (ADR 0020).
      metrics: { address: '127.0.0.1', port: 8552 },
      // The telemetry egress listener: basePort + 450 + the workload's sorted position (ADR 0023).
      telemetryEgress: { address: '127.0.0.1', port: 8452 },
      egress: {
        cassandra: {
          listen: { address: '127.0.0.1', port: 8720 },
          upstream: { address: '127.0.0.1', port: 8042 },
          serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra',
        },
        kafka: {
          listen: { address: '127.0.0.1', port: 8721 },
          upstream: { address: '127.0.0.1', port: 8303 },
          serverSpiffeId: 'spiffe://trellis.local/ns/trellis/sa/kafka',
        },
      },
      peers: {},
      svid: {
        kind: 'files',
        dir: '/stack/pki/orders-api',
        cert: '/stack/pki/orders-api/cert.pem',
        key: '/stack/pki/orders-api/key.pem',
        bundle: '/stack/pki/orders-api/bundle.pem',
      },
      proxyDir: '/stack/run/orders-api-sidecar',
    });
  });

  it('places the trace pipeline on the host (the front where pods reach it) and tells each sidecar', () => {
    const t = ok(referenceModel(), local()).binding.tracing;
    expect(t).toMatchObject({
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/otel-collector',
      sampling: 1,
      collector: {
        front: { address: '127.0.0.1', port: 8420 },
        receiver: { address: '127.0.0.1', port: 8421 },
        admin: { address: '127.0.0.1', port: 8422 },
        svid: { kind: 'files', dir: '/stack/pki/otel-collector' },
      },
      jaeger: {
        spiffeId: 'spiffe://trellis.local/ns/trellis/sa/jaeger',
        otlp: { address: '127.0.0.1', port: 8423 },
        query: { address: '127.0.0.1', port: 8424 },
        queryGrpc: { address: '127.0.0.1', port: 8425 },
        svid: { kind: 'files', dir: '/stack/pki/jaeger' },
      },
    });
    const pods = { hostAddress: '198.18.8.1', addresses: { 'orders-api': '198.18.8.4' } };
    const b = ok(referenceModel(), { ...local(), pods });
    // The front stays on the host's loopback; a pod reaches it at the host's end of its link.
    expect(b.binding.tracing?.collector?.front).toEqual({ address: '127.0.0.1', port: 8420 });
    expect(envoyOptions(b, 'orders-api').tracing).toEqual({
      collector: { address: '198.18.8.1', port: 8420 },
      egressPort: 8452,
    });
    // The edge (not a pod here) has no app, so no telemetry egress; its sidecar still traces.
    expect(envoyOptions(b, 'ingress').tracing).toEqual({
      collector: { address: '127.0.0.1', port: 8420 },
    });
  });

  it('binds no trace pipeline and no telemetry egress for a model without tracing', () => {
    const m = referenceModel();
    delete (m as { tracing?: unknown }).tracing;
    const b = ok(m, local());
    expect(b.binding.tracing).toBeUndefined();
    expect(b.binding.workloads['orders-api']?.telemetryEgress).toBeUndefined();
    expect(envoyOptions(b, 'orders-api').tracing).toBeUndefined();
  });

  it('puts a pod’s inbound on its address, keeps the rest on its loopback, and sends it to the host', () => {
    const pods = { hostAddress: '198.18.8.1', addresses: { 'orders-api': '198.18.8.4' } };
    const b = ok(referenceModel(), { ...local(), pods });
    const w = b.binding.workloads['orders-api'];
    expect(w?.inbound).toEqual({ http: { address: '198.18.8.4', port: 8620 } });
    expect(w?.app).toEqual({ http: { address: '127.0.0.1', port: 8820 } });
    expect(w?.admin).toEqual({ address: '127.0.0.1', port: 8502 });
    expect(w?.hostAddress).toBe('198.18.8.1');
    expect(w?.egress.cassandra).toMatchObject({
      listen: { address: '127.0.0.1', port: 8720 },
      upstream: { address: '198.18.8.1', port: 8042 },
    });
    expect(w?.egress.kafka).toMatchObject({
      listen: { address: '127.0.0.1', port: 8721 },
      upstream: { address: '198.18.8.1', port: 8303 },
    });
    // The ingress (not a pod here) dials orders-api at its pod address, everything else as before.
    const edge = b.binding.workloads.ingress;
    expect(edge?.peers['orders-api']?.upstream).toEqual({ address: '198.18.8.4', port: 8620 });
    expect(edge?.hostAddress).toBeUndefined();
    expect(b.binding.workloads.ledger?.egress.cassandra?.upstream.address).toBe('127.0.0.1');
    const o = envoyOptions(b, 'orders-api');
    expect(o.inboundAddress).toBe('198.18.8.4');
    expect(o.jwks?.keycloak).toMatchObject({ address: '198.18.8.1', port: 8180, tls: true });
    expect(envoyOptions(b, 'ledger').jwks?.keycloak).toMatchObject({ address: '127.0.0.1' });
    expect(envoyOptions(b, 'ledger').inboundAddress).toBeUndefined();
  });

  it('makes the edge’s pod the ingress gateway: nginx on its address, the edge inbound inside', () => {
    const pods = {
      hostAddress: '198.18.8.1',
      addresses: { ingress: '198.18.8.2', ledger: '198.18.8.3', 'orders-api': '198.18.8.4' },
    };
    const b = ok(referenceModel(), { ...local(), pods });
    // nginx's public listener follows from the binding: the edge pod's address, the ingress port.
    expect(b.binding.edge?.listen).toEqual({ address: '198.18.8.2', port: 8443 });
    // The edge sidecar's inbound is plaintext from nginx: on the pod's own loopback, not its address.
    const edge = b.binding.workloads.ingress;
    expect(edge?.inbound).toEqual({ http: { address: '127.0.0.1', port: 8600 } });
    expect(edge?.admin).toEqual({ address: '127.0.0.1', port: 8500 });
    expect(edge?.hostAddress).toBe('198.18.8.1');
    expect(envoyOptions(b, 'ingress').inboundAddress).toBeUndefined();
    expect(envoyOptions(b, 'ingress').jwks?.keycloak).toMatchObject({ address: '198.18.8.1' });
    // The ledger is a pod like orders-api.
    const ledger = b.binding.workloads.ledger;
    expect(ledger?.inbound).toEqual({ http: { address: '198.18.8.3', port: 8610 } });
    expect(ledger?.app).toEqual({ http: { address: '127.0.0.1', port: 8810 } });
    expect(ledger?.egress.cassandra?.upstream).toEqual({ address: '198.18.8.1', port: 8042 });
    expect(ledger?.egress.kafka?.upstream).toEqual({ address: '198.18.8.1', port: 8302 });
    // Without pods nginx is on the host's loopback.
    expect(ok(referenceModel(), local()).binding.edge?.listen).toEqual({
      address: '127.0.0.1',
      port: 8443,
    });
  });

  it('sends a pod’s data upstreams to the server pods, and keeps host workloads on loopback', () => {
    const pods = {
      hostAddress: '198.18.8.1',
      addresses: { 'orders-api': '198.18.8.4' },
      servers: { cassandra: '198.18.8.22', kafka: '198.18.8.23' },
    };
    const b = ok(referenceModel(), { ...local(), pods });
    const w = b.binding.workloads['orders-api'];
    expect(w?.egress.cassandra).toMatchObject({
      listen: { address: '127.0.0.1', port: 8720 },
      upstream: { address: '198.18.8.22', port: 8042 },
    });
    expect(w?.egress.kafka).toMatchObject({
      listen: { address: '127.0.0.1', port: 8721 },
      upstream: { address: '198.18.8.23', port: 8303 },
    });
    // Keycloak has no pod here: the JWKS stays at the host's end of the link.
    expect(w?.hostAddress).toBe('198.18.8.1');
    expect(envoyOptions(b, 'orders-api').jwks?.keycloak).toMatchObject({ address: '198.18.8.1' });
    // A workload on the host keeps loopback (the host relays it to the server pods).
    expect(b.binding.workloads.ledger?.egress.cassandra?.upstream).toEqual({
      address: '127.0.0.1',
      port: 8042,
    });
    expect(b.binding.workloads.ledger?.egress.kafka?.upstream.address).toBe('127.0.0.1');
    // Direct clients (platform-admin, the tests) keep the host's view.
    expect(b.binding.dataServices.cassandra?.endpoint).toEqual({
      address: '127.0.0.1',
      port: 8042,
    });
    expect(b.binding.dataServices.kafka?.endpoint).toEqual({ address: '127.0.0.1', port: 8300 });
  });

  it('refuses server pods that are unknown, on loopback or shared, at their paths', () => {
    const servers = {
      cassandra: '127.0.0.9',
      kafka: '198.18.8.4',
      redis: '198.18.8.30',
    } as NonNullable<LocalEnvironment['pods']>['servers'];
    const errs = errors(referenceModel(), {
      ...local(),
      pods: { hostAddress: '198.18.8.1', addresses: { 'orders-api': '198.18.8.4' }, servers },
    });
    expect(errs).toEqual([
      {
        path: 'environment.pods.servers.cassandra',
        reason: "'127.0.0.9' is not an IPv4 address off loopback",
      },
      {
        path: 'environment.pods.servers.kafka',
        reason: "'198.18.8.4' is already environment.pods.addresses.orders-api",
      },
      {
        path: 'environment.pods.servers.redis',
        reason: 'redis is not a server of the stack (cassandra, kafka, keycloak)',
      },
    ]);
  });

  it('refuses pods of unknown workloads, loopback or shared addresses, at their paths', () => {
    const errs = errors(referenceModel(), {
      ...local(),
      pods: {
        hostAddress: '198.18.8.1',
        addresses: { nope: '198.18.8.9', ledger: '127.0.0.2', 'orders-api': '198.18.8.1' },
      },
    });
    expect(errs).toEqual([
      { path: 'environment.pods.addresses.nope', reason: 'nope is not a workload of the model' },
      {
        path: 'environment.pods.addresses.ledger',
        reason: "'127.0.0.2' is not an IPv4 address off loopback",
      },
      {
        path: 'environment.pods.addresses.orders-api',
        reason: "'198.18.8.1' is already environment.pods.hostAddress",
      },
    ]);
  });

  it('sends a pod’s JWKS fetch to Keycloak’s own pod when it runs in one, the host’s to loopback', () => {
    const pods = {
      hostAddress: '198.18.8.1',
      addresses: { 'orders-api': '198.18.8.4' },
      servers: { keycloak: '198.18.8.24' },
    };
    const b = ok(referenceModel(), { ...local(), pods });
    expect(b.binding.identityProviders.keycloak?.keycloak).toEqual({
      baseUrl: 'https://localhost:8180',
      realm: 'trellis',
      podAddress: '198.18.8.24',
    });
    // The issuer does not move: host clients keep https://localhost:8180.
    expect(b.identityProviders.keycloak?.issuer).toBe('https://localhost:8180/realms/trellis');
    expect(envoyOptions(b, 'orders-api').jwks?.keycloak).toEqual({
      address: '198.18.8.24',
      port: 8180,
      tls: true,
      caFile: '/stack/pki/orders-api/bundle.pem',
    });
    // Still the host's end for the data services: only Keycloak moved here.
    expect(b.binding.workloads['orders-api']?.egress.cassandra?.upstream.address).toBe(
      '198.18.8.1',
    );
    expect(envoyOptions(b, 'ledger').jwks?.keycloak).toMatchObject({ address: '127.0.0.1' });
  });

  it('refuses a Keycloak pod address on loopback, shared, or without a Keycloak, at its path', () => {
    const at = (keycloak: string, addresses: Record<string, string> = {}) =>
      errors(referenceModel(), {
        ...local(),
        pods: { hostAddress: '198.18.8.1', addresses, servers: { keycloak } },
      });
    expect(at('127.0.0.1')).toEqual([
      {
        path: 'environment.pods.servers.keycloak',
        reason: "'127.0.0.1' is not an IPv4 address off loopback",
      },
    ]);
    expect(at('198.18.8.1')).toEqual([
      {
        path: 'environment.pods.servers.keycloak',
        reason: "'198.18.8.1' is already environment.pods.hostAddress",
      },
    ]);
    expect(at('198.18.8.4', { 'orders-api': '198.18.8.4' })).toEqual([
      {
        path: 'environment.pods.servers.keycloak',
        reason: "'198.18.8.4' is already environment.pods.addresses.orders-api",
      },
    ]);
    const { keycloak: _none, ...noKeycloak } = local();
    expect(
      errors(referenceModel(), {
        ...noKeycloak,
        pods: { hostAddress: '198.18.8.1', addresses: {}, servers: { keycloak: '198.18.8.24' } },
      }),
    ).toEqual([
      {
        path: 'environment.pods.servers.keycloak',
        reason: 'the stack runs no Keycloak (environment.keycloak is not set)',
      },
    ]);
  });

  it('numbers workloads by sorted name, so that YAML order moves no port', () => {
    const reordered = variant((d) => {
      const { ingress, ...rest } = d.workloads as Record<string, unknown>;
      d.workloads = { ...rest, ingress } as typeof d.workloads;
    });
    expect(ok(reordered, local()).binding.workloads).toEqual(
      ok(referenceModel(), local()).binding.workloads,
    );
  });

  it('refuses a model without a loopback Keycloak issuer, naming what it has', () => {
    const external = variant((d) => {
      const idp = d.identityProviders.keycloak as { issuer: string; jwksUri: string };
      idp.issuer = 'https://idp.example.com/oauth2';
      idp.jwksUri = 'https://idp.example.com/oauth2/keys';
    });
    expect(errors(external, local())).toEqual([
      {
        path: 'identityProviders',
        reason:
          'none is served by the local Keycloak; declare one whose issuer is http://localhost:<port>/realms/<realm> (have: keycloak https://idp.example.com/oauth2)',
      },
    ]);
    // Without a Keycloak of its own, the stack keeps every issuer as written.
    const { keycloak: _, ...noKeycloak } = local();
    expect(ok(external, noKeycloak).identityProviders).toEqual(external.identityProviders);
  });

  it('refuses a bad Keycloak URL, a bad base port, and a model the stack cannot front', () => {
    const m = referenceModel();
    expect(errors(m, { ...local(), keycloak: { baseUrl: 'http://localhost:8180/auth' } })).toEqual([
      {
        path: 'environment.keycloak.baseUrl',
        reason: "'http://localhost:8180/auth' must be scheme, host and port only",
      },
    ]);
    expect(
      errors(m, { ...local(), keycloak: { baseUrl: 'http://kc.example:8180' } })[0]?.path,
    ).toBe('environment.keycloak.baseUrl');
    expect(errors(m, local(65_000))).toEqual([
      { path: 'environment.basePort', reason: 'must be an integer in [1024, 64635], got 65000' },
    ]);
    const noEdge = variant((d) => {
      delete (d.workloads.ingress as { edge?: boolean }).edge;
      d.routes = {};
      // trellis.yaml's ci budgets name the routes removed here.
      delete d.budgets?.environments;
    });
    expect(errors(noEdge, local())).toEqual([
      {
        path: 'workloads',
        reason:
          'the local stack runs one nginx in front of one edge workload; the model has 0 (none)',
      },
    ]);
  });

  it('refuses more workloads or ports than the blocks hold, at their paths', () => {
    const many = variant((d) => {
      for (let i = 0; i < 7; i++)
        d.workloads[`w${i}`] = { ports: [{ name: 'http', port: 9000 + i, protocol: 'http' }] };
    });
    expect(errors(many, local())).toEqual([
      { path: 'workloads', reason: 'the local stack has ports for 10 workloads, the model has 11' },
    ]);
    const ports = variant((d) => {
      // Its metrics name the port `http`, which this variant replaces.
      delete (d.workloads as Record<string, Record<string, unknown>>)['ledger']?.metrics;
      setPorts(
        d,
        'ledger',
        Array.from({ length: 11 }, (_, i) => ({
          name: `p${i}`,
          port: 9000 + i,
          protocol: 'tcp' as const,
        })),
      );
    });
    expect(errors(ports, local())).toContainEqual({
      path: 'workloads.ledger.ports',
      reason: 'the local stack has room for 10 ports per workload, got 11',
    });
  });
});

describe('bind to kubernetes', () => {
  it('swaps in the deployed issuer, the environment hosts and the gateway identity', () => {
    const b = ok(referenceModel(), cluster);
    expect(b.identityProviders.keycloak?.issuer).toBe(issuer);
    expect(Object.values(b.routes).flatMap((r) => r.hosts)).toEqual([
      'api.us.example.com',
      'api.us.example.com',
    ]);
    expect(b.binding.routes['create-order']).toEqual({ hosts: ['api.us.example.com'] });
    expect(b.workloads.ingress).toMatchObject({
      namespace: 'trellis-gateway',
      serviceAccount: 'trellis-nginx',
    });
    expect(b.binding.edge).toEqual({
      workload: 'ingress',
      namespace: 'trellis-gateway',
      serviceAccount: 'trellis-nginx',
      spiffeId: 'spiffe://trellis.local/ns/trellis-gateway/sa/trellis-nginx',
    });
    expect(b.workloads['orders-api']?.namespace).toBe('trellis');
  });

  it('reaches workloads by Service name, apps on their pods, data services by their Services', () => {
    const b = ok(referenceModel(), cluster);
    expect(b.binding.workloads['orders-api']).toMatchObject({
      inbound: { http: { address: 'orders-api.trellis.svc.cluster.local', port: 8080 } },
      app: { http: { address: '0.0.0.0', port: 8080 } },
      admin: { address: '127.0.0.1', port: 15_000 },
      egress: { kafka: { upstream: cluster.dataServices?.kafka } },
      svid: { kind: 'sds', socket: '/etc/istio/proxy/SDS' },
    });
    expect(b.binding.workloads['orders-api']?.egress.kafka?.listen).toBeUndefined();
    expect(b.binding.workloads.ingress?.peers['orders-api']).toEqual({
      port: 'http',
      upstream: { address: 'orders-api.trellis.svc.cluster.local', port: 8080 },
    });
    expect(() => envoyOptions(b, 'orders-api')).toThrow(
      'workloads.orders-api: the kubernetes environment runs no Trellis sidecar (its SVID comes over SDS)',
    );
  });

  it('leaves the caller’s model untouched, and binds a bound model again', () => {
    const model = referenceModel();
    const b = ok(model, cluster);
    expect(model.identityProviders.keycloak?.issuer).toBe('https://localhost:8180/realms/trellis');
    expect(model.workloads.ingress?.namespace).toBeUndefined();
    expect('binding' in model).toBe(false);
    // Bound again (e.g. to render what the cluster runs), it keeps what the cluster changed.
    const again = ok(b, { kind: 'example' });
    expect(again.binding.environment).toBe('example');
    expect(again.identityProviders.keycloak?.issuer).toBe(issuer);
  });

  it('names every route host, provider and data service the environment lacks', () => {
    const e = errors(referenceModel(), { ...cluster, hosts: {}, issuers: {}, dataServices: {} });
    expect(e).toEqual([
      {
        path: 'routes.create-order.auth.provider',
        reason:
          'identity provider "keycloak" has no issuer in this environment (environment.issuers)',
      },
      {
        path: 'routes.create-order.hosts[0]',
        reason: 'no environment host for the model host "localhost" (environment.hosts)',
      },
      {
        path: 'routes.get-order.auth.provider',
        reason:
          'identity provider "keycloak" has no issuer in this environment (environment.issuers)',
      },
      {
        path: 'routes.get-order.hosts[0]',
        reason: 'no environment host for the model host "localhost" (environment.hosts)',
      },
    ]);
    expect(errors(referenceModel(), { ...cluster, dataServices: {} })).toContainEqual({
      path: 'workloads.orders-api.calls[0]',
      reason: 'the environment has no endpoint for cassandra (environment.dataServices.cassandra)',
    });
    expect(
      errors(referenceModel(), {
        ...cluster,
        issuers: { ...cluster.issuers, okta: { issuer, jwksUri: issuer } },
      }),
    ).toEqual([
      {
        path: 'environment.issuers.okta',
        reason: '"okta" is not an identity provider of the model',
      },
    ]);
  });

  it('validates the model as deployed: an http issuer off loopback is refused at its path', () => {
    const plain = { issuer: 'http://auth.example.com/realms/trellis', jwksUri: issuer };
    const e = errors(referenceModel(), { ...cluster, issuers: { keycloak: plain } });
    expect(e.map((x) => x.path)).toContain('identityProviders.keycloak.issuer');
    expect(e.find((x) => x.path === 'identityProviders.keycloak.issuer')?.reason).toMatch(
      /must use https/,
    );
  });

  it('refuses a second edge workload, and an app port Istio’s sidecar holds', () => {
    const twoEdges = variant((d) => {
      d.workloads.admin = {
        edge: true,
        ports: [{ name: 'http', port: 9443, protocol: 'http' }],
        calls: [],
      };
    });
    expect(errors(twoEdges, cluster)).toEqual([
      {
        path: 'workloads',
        reason: 'a cluster has one gateway, the model has 2 edge workloads (ingress, admin)',
      },
    ]);
    const onIstio = variant((d) => {
      setPorts(d, 'ledger', [{ name: 'http', port: 15006, protocol: 'http' }]);
    });
    expect(errors(onIstio, cluster)).toEqual([
      {
        path: 'workloads.ledger.ports[0]',
        reason:
          "the app of ledger (http) 0.0.0.0:15006 is taken by Istio's sidecar port (environment.istio) in network pod:trellis/ledger",
      },
    ]);
  });
});

describe('bind to the example plan', () => {
  it('gives the documented plan: inbound + 10000, app on the model port, admin from 9901', () => {
    const b = ok(referenceModel(), { kind: 'example', baseDir: '/srv' });
    expect(envoyOptions(b, 'orders-api')).toEqual({
      workload: 'orders-api',
      inbound: { http: 18_080 },
      app: { http: { address: '127.0.0.1', port: 8080 } },
      outbound: {
        cassandra: {
          address: '127.0.0.1',
          port: 9142,
          listenPort: 15_001,
          spiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra',
        },
        kafka: {
          address: '127.0.0.1',
          port: 9093,
          listenPort: 15_002,
          spiffeId: 'spiffe://trellis.local/ns/trellis/sa/kafka',
        },
      },
      adminPort: 9902,
      metrics: { port: 15_090, statsPort: 9902 },
      sds: {
        dir: '/srv/envoy/orders-api/sds',
        certChain: '/srv/envoy/orders-api/certs/cert.pem',
        privateKey: '/srv/envoy/orders-api/certs/key.pem',
        trustBundle: '/srv/envoy/orders-api/certs/bundle.pem',
      },
    });
    expect(envoyOptions(b, 'ingress').outbound).toEqual({
      'orders-api': { address: '127.0.0.1', port: 18_080, listenPort: 15_001 },
    });
  });

  it('refuses two listeners on one port of a workload, naming both', () => {
    const m = variant((d) => {
      setPorts(d, 'ledger', [
        { name: 'http', port: 8081, protocol: 'http' },
        { name: 'ops', port: 18_081, protocol: 'tcp' },
      ]);
    });
    expect(errors(m, { kind: 'example' })).toEqual([
      {
        path: 'workloads.ledger.ports[1]',
        reason:
          'the app of ledger (ops) 127.0.0.1:18081 is taken by the inbound listener of ledger (http) (workloads.ledger.ports[0]) in network example:ledger',
      },
    ]);
    const high = variant((d) => {
      setPorts(d, 'ledger', [{ name: 'http', port: 60_000, protocol: 'http' }]);
    });
    expect(errors(high, { kind: 'example' })).toEqual([
      {
        path: 'workloads.ledger.ports[0]',
        reason: 'the inbound listener of ledger (http): 70000 is not a TCP port',
      },
    ]);
  });
});

describe('budget overrides', () => {
  const model = referenceModel();
  const run = (budgets: Environment['budgets']) => ({ kind: 'example' as const, budgets });

  it('changes a copy of a route’s or the mesh’s budget', () => {
    const b = ok(
      model,
      run([
        { target: 'create-order', p99Ms: 0.01 },
        { target: 'mesh', p50Ms: 0.5 },
      ]),
    );
    expect(b.routes['create-order']?.budget).toEqual({ rps: 500, p99Ms: 0.01, maxErrorRate: 0 });
    expect(b.budgets?.mesh).toEqual({ p50Ms: 0.5, p99Ms: 1, rps: 500 });
    expect(model.routes['create-order']?.budget?.p99Ms).toBe(10);
  });

  it('names the override that cannot apply, and the field validation refuses', () => {
    expect(errors(model, run([{ target: 'refunds', p99Ms: 3 }]))).toEqual([
      {
        path: 'environment.budgets[0]',
        reason: "no route 'refunds' in the model (routes: create-order, get-order; or mesh)",
      },
    ]);
    expect(errors(model, run([{ target: 'mesh', maxErrorRate: 0.1 }]))).toEqual([
      { path: 'environment.budgets[0]', reason: 'mesh: the mesh budget has no error rate' },
    ]);
    expect(errors(model, run([{ target: 'get-order', p99Ms: -1 }]))[0]?.path).toBe(
      'routes.get-order.budget.p99Ms',
    );
  });
});

describe('bind in general', () => {
  it('refuses an unknown environment kind, and throws all errors from bindOrThrow', () => {
    const bad = { kind: 'mars' } as unknown as Environment;
    expect(errors(referenceModel(), bad)).toEqual([
      { path: 'environment.kind', reason: 'must be one of local, kubernetes, example, got mars' },
    ]);
    expect(() => bindOrThrow(referenceModel(), bad, 'the mars plan')).toThrow(
      'the mars plan:\nenvironment.kind: must be one of local, kubernetes, example, got mars',
    );
  });

  it('reaches a peer on the port its routes use, else its first port', () => {
    const m = variant((d) => {
      setPorts(d, 'orders-api', [
        { name: 'grpc', port: 9090, protocol: 'grpc' },
        { name: 'http', port: 8080, protocol: 'http' },
      ]);
    });
    expect(peerPort(m, 'orders-api')?.name).toBe('http');
    expect(peerPort(m, 'ledger')?.name).toBe('http');
    expect(peerPort(m, 'nobody')).toBeUndefined();
  });

  it('finds a collision whatever the address form, wildcard included', () => {
    const l = (network: string, address: string, port: number, path: string) => ({
      network,
      endpoint: { address, port },
      path,
      what: path,
    });
    expect(
      collisions([
        l('n', '127.0.0.1', 1, 'a'),
        l('n', '0.0.0.0', 1, 'b'),
        l('m', '127.0.0.1', 1, 'c'),
      ]),
    ).toEqual([{ path: 'b', reason: 'b 0.0.0.0:1 is taken by a (a) in network n' }]);
    expect(collisions([l('n', '127.0.0.1', 1, 'a'), l('n', '127.0.0.2', 1, 'b')])).toEqual([]);
  });
});
