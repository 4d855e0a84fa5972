import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import * as pulumi from '@pulumi/pulumi';
import { bindOrThrow, compileKafkaAcls, parseModel } from '@trellis/policy';
import type { IstioResource, KafkaAclBinding, ValidModel } from '@trellis/policy';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clusterGateway,
  compileForCluster,
  bindCluster,
  clusterEnvironment,
  gatewayServiceAccount,
  kafkaUsersFromBindings,
  strimziPrincipal,
} from '../src/k8s/compile.ts';
import type { ClusterTarget } from '../src/k8s/compile.ts';
import { NginxGateway } from '../src/k8s/gateway.ts';
import { MeshPolicy } from '../src/k8s/meshPolicy.ts';
import { Platform, type ServiceDeployment } from '../src/k8s/platform.ts';
import { SloRules } from '../src/k8s/sloRules.ts';
import { RecordingMocks, settle } from './support/mocks.ts';

const reference = (): ValidModel => {
  const r = parseModel(readFileSync(resolve(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('the reference model is invalid');
  return r.model;
};

const issuer = 'https://auth.us.example.com/realms/trellis';
const target: ClusterTarget = {
  region: 'us',
  issuers: { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } },
  hosts: { localhost: 'api.us.example.com' },
  inClusterKeycloak: true,
};

describe('bindCluster', () => {
  it('swaps in the deployed issuer, the environment hosts and the gateway identity', () => {
    const env = bindCluster(reference(), target);
    expect(env.identityProviders.keycloak?.issuer).toBe(issuer);
    expect(Object.values(env.routes).flatMap((r) => r.hosts)).toEqual([
      'api.us.example.com',
      'api.us.example.com',
    ]);
    expect(env.workloads.ingress).toMatchObject({
      namespace: 'trellis-gateway',
      serviceAccount: 'trellis-nginx',
    });
    expect(env.workloads['orders-api']?.namespace).toBe('trellis');
    expect(gatewayServiceAccount(clusterGateway)).toBe('trellis-nginx');
  });

  it('binds the data services to the Services the Cassandra and StrimziKafka components create', () => {
    expect(clusterEnvironment(target).dataServices).toEqual({
      cassandra: { address: 'trellis-us-service.trellis-cassandra.svc.cluster.local', port: 9042 },
      kafka: { address: 'trellis-kafka-bootstrap.trellis-kafka.svc.cluster.local', port: 9093 },
    });
    const bound = bindCluster(reference(), target);
    expect(bound.binding.workloads['orders-api']?.egress.cassandra?.upstream.address).toBe(
      'trellis-us-service.trellis-cassandra.svc.cluster.local',
    );
    expect(bound.binding.edge?.spiffeId).toBe(
      'spiffe://trellis.local/ns/trellis-gateway/sa/trellis-nginx',
    );
  });

  it('leaves the caller’s model untouched', () => {
    const model = reference();
    bindCluster(model, target);
    expect(model.identityProviders.keycloak?.issuer).toBe('https://localhost:8180/realms/trellis');
    expect(model.workloads.ingress?.namespace).toBeUndefined();
  });

  it('refuses a route host without an environment host', () => {
    expect(() => bindCluster(reference(), { ...target, hosts: {} })).toThrow(
      'routes.create-order.hosts[0]: no environment host for the model host "localhost" (environment.hosts)',
    );
  });

  it('refuses a route whose identity provider has no issuer here', () => {
    expect(() => bindCluster(reference(), { ...target, issuers: {} })).toThrow(
      'routes.create-order.auth.provider: identity provider "keycloak" has no issuer in this environment (environment.issuers)',
    );
  });

  it('refuses an issuer the model cannot use, with the model validation errors', () => {
    const plain = { issuer: 'http://auth.example.com/realms/trellis', jwksUri: issuer };
    expect(() => bindCluster(reference(), { ...target, issuers: { keycloak: plain } })).toThrow(
      /identityProviders\.keycloak\.issuer.*must use https/s,
    );
  });

  it('refuses a second edge workload (one gateway per cluster)', () => {
    const model = structuredClone(reference());
    model.workloads.admin = {
      edge: true,
      ports: [{ name: 'http', port: 9443, protocol: 'http' }],
      calls: [],
    };
    expect(() => bindCluster(model, target)).toThrow(/one gateway, the model has 2 edge workloads/);
  });
});

describe('kafkaUsersFromBindings', () => {
  const b = (over: Partial<KafkaAclBinding>): KafkaAclBinding => ({
    resourceType: 'TOPIC',
    resourceName: 't',
    patternType: 'LITERAL',
    principal: strimziPrincipal('orders-api'),
    host: '*',
    operation: 'WRITE',
    permissionType: 'ALLOW',
    ...over,
  });

  it('maps Kafka ACL bindings to Strimzi AclRules, one KafkaUser per principal', () => {
    const users = kafkaUsersFromBindings(reference(), [
      b({}),
      b({
        principal: strimziPrincipal('ledger'),
        resourceType: 'GROUP',
        patternType: 'PREFIXED',
        operation: 'READ',
      }),
      b({
        resourceType: 'CLUSTER',
        resourceName: 'kafka-cluster',
        operation: 'IDEMPOTENT_WRITE',
        permissionType: 'DENY',
      }),
    ]);
    expect(users).toEqual([
      {
        name: 'ledger',
        acls: [
          {
            type: 'allow',
            resource: { type: 'group', name: 't', patternType: 'prefix' },
            host: '*',
            operations: ['Read'],
          },
        ],
      },
      {
        name: 'orders-api',
        acls: [
          {
            type: 'allow',
            resource: { type: 'topic', name: 't', patternType: 'literal' },
            host: '*',
            operations: ['Write'],
          },
          {
            type: 'deny',
            resource: { type: 'cluster' },
            host: '*',
            operations: ['IdempotentWrite'],
          },
        ],
      },
    ]);
  });

  it('refuses a principal that is not a workload', () => {
    expect(() =>
      kafkaUsersFromBindings(reference(), [b({ principal: 'User:CN=mallory' })]),
    ).toThrow('compileKafkaAcls: principal User:CN=mallory is not a workload of the model');
  });

  it('keeps every binding compileKafkaAcls makes for the reference model', () => {
    const bindings = compileKafkaAcls(
      bindOrThrow(reference(), { kind: 'example', baseDir: '/srv' }, 'example plan'),
      { principal: strimziPrincipal },
    );
    const users = kafkaUsersFromBindings(reference(), bindings);
    expect(users.flatMap((u) => u.acls)).toHaveLength(bindings.length);
  });
});

describe('compileForCluster', () => {
  it('compiles every artefact for the region, and a realm only for an in-cluster Keycloak', () => {
    const c = compileForCluster(reference(), target);
    expect(c.gateway.metadata).toMatchObject({
      name: 'trellis',
      namespace: 'trellis-gateway',
      labels: { 'trellis.dev/region': 'us' },
    });
    expect(c.routes.map((r) => r.metadata.name)).toEqual(['create-order', 'get-order']);
    expect(c.mesh.every((o) => o.metadata.labels['trellis.dev/region'] === 'us')).toBe(true);
    expect(c.realm?.realm).toBe('trellis');
    expect(c.kafkaUsers.map((u) => u.name)).toEqual(['ledger', 'orders-api', 'orders-writer']);
    // The order queue and orders.v1 as Strimzi ACL rules: orders-api only writes the intake; the
    // batch writer reads it as group orders-writer and alone writes orders.v1.
    const rules = (name: string) =>
      c.kafkaUsers
        .find((u) => u.name === name)
        ?.acls.map(
          (a) => `${a.type} ${a.operations.join(',')} ${a.resource.type} ${a.resource.name}`,
        )
        .sort();
    expect(rules('orders-api')).toEqual(['allow Write topic orders.intake.v1']);
    expect(rules('orders-writer')).toEqual([
      'allow Read group orders-writer',
      'allow Read topic orders.intake.v1',
      'allow Write topic orders.v1',
    ]);
    expect(rules('ledger')).toEqual(['allow Read group ledger', 'allow Read topic orders.v1']);
    expect(compileForCluster(reference(), { ...target, inClusterKeycloak: false }).realm).toBe(
      undefined,
    );
  });

  it('compiles SLO rules only when the target asks, with its labels and region', () => {
    expect(compileForCluster(reference(), target).sloRules).toBeUndefined();
    const c = compileForCluster(reference(), {
      ...target,
      sloRules: { labels: { release: 'kps' } },
    });
    expect(c.sloRules?.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      'trellis/trellis-slo-create-order',
      'trellis/trellis-slo-get-order',
    ]);
    expect(c.sloRules?.[0]?.metadata.labels).toEqual({
      release: 'kps',
      'app.kubernetes.io/managed-by': 'trellis',
      'trellis.dev/region': 'us',
    });
  });
});

describe('components refuse policy that would open the mesh or the edge', () => {
  let mocks: RecordingMocks;
  beforeAll(async () => {
    mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, 'trellis', 'test', false);
  });
  const compiled = () => compileForCluster(reference(), target);

  it('Platform refuses an SQS order queue for a service that reads none', () => {
    const image = (w: string) =>
      `ghcr.io/trellis-platform/${w}@sha256:${'3f9a1c7e5b2d8046'.repeat(4)}`;
    const orderQueue = {
      url: 'https://sqs.us-east-1.amazonaws.com/123456789012/trellis-writes.fifo',
      region: 'us-east-1',
    };
    const platform = (services: Record<string, ServiceDeployment>) =>
      new Platform('pq', {
        model: reference(),
        cluster: 'dev',
        region: 'us',
        root: { certPem: '', keyPem: '' },
        compiled: compiled(),
        idp: { mode: 'external', issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` },
        gatewayExposure: { type: 'LoadBalancer' },
        edgeTls: { kind: 'ClusterIssuer', name: 'x' },
        services,
      });
    expect(() =>
      platform({
        'orders-api': { image: image('orders-api'), orderQueue },
        'orders-writer': { image: image('orders-writer'), orderQueue },
        ledger: { image: image('ledger'), orderQueue },
      }),
    ).toThrow(
      'Platform pq: services.ledger.orderQueue: ledger reads no order queue (ORDERS_QUEUE is not in its env schema)',
    );
  });

  it('MeshPolicy refuses a PERMISSIVE PeerAuthentication', () => {
    const objects: IstioResource[] = structuredClone(compiled().mesh);
    const pa = objects.find(
      (o) => o.kind === 'PeerAuthentication' && o.metadata.namespace === 'trellis',
    );
    if (pa?.kind !== 'PeerAuthentication') throw new Error('no PeerAuthentication in trellis');
    pa.spec.mtls.mode = 'PERMISSIVE';
    expect(() => new MeshPolicy('p1', { objects, rootNamespace: 'istio-system' })).toThrow(
      /objects\[\d+\] \(trellis\/default\) sets spec\.mtls\.mode PERMISSIVE; only STRICT is allowed/,
    );
  });

  it('MeshPolicy refuses policy without a mesh-wide STRICT PeerAuthentication', () => {
    const objects = compiled().mesh.filter((o) => o.metadata.namespace !== 'istio-system');
    expect(() => new MeshPolicy('p2', { objects, rootNamespace: 'istio-system' })).toThrow(
      'MeshPolicy p2: objects hold no mesh-wide PeerAuthentication in istio-system',
    );
  });

  it('NginxGateway refuses a route outside the Gateway namespace', () => {
    const c = compiled();
    const routes = structuredClone(c.routes);
    (routes[0] as { metadata: { namespace: string } }).metadata.namespace = 'trellis';
    expect(
      () =>
        new NginxGateway('g1', {
          gateway: c.gateway,
          routes,
          exposure: { type: 'LoadBalancer' },
          tls: { kind: 'ClusterIssuer', name: 'x' },
        }),
    ).toThrow(
      /routes\[0\] \(create-order\) is in trellis, not the Gateway's namespace trellis-gateway/,
    );
  });

  it('SloRules takes PrometheusRule objects only, each once and with a group', async () => {
    const rules = compileForCluster(reference(), { ...target, sloRules: {} }).sloRules ?? [];
    expect(rules).toHaveLength(2);
    const notARule = structuredClone(rules);
    (notARule[1] as { kind: string }).kind = 'ConfigMap';
    expect(() => new SloRules('s1', { rules: notARule })).toThrow(
      'SloRules s1: rules[1] is monitoring.coreos.com/v1/ConfigMap, not a PrometheusRule',
    );
    expect(() => new SloRules('s2', { rules: [rules[0]!, rules[0]!] })).toThrow(
      'SloRules s2: rules[1] duplicates trellis/trellis-slo-create-order',
    );
    const empty = structuredClone(rules);
    empty[0]!.spec.groups = [];
    expect(() => new SloRules('s3', { rules: empty })).toThrow(
      'SloRules s3: rules[0] (trellis/trellis-slo-create-order) has no rule group',
    );
    new SloRules('s4', { rules });
    await settle(mocks);
    expect(
      mocks
        .kind('PrometheusRule')
        .filter((r) => r.name.startsWith('s4-'))
        .map((r) => r.name),
    ).toEqual([
      's4-prometheusrule-trellis-trellis-slo-create-order',
      's4-prometheusrule-trellis-trellis-slo-get-order',
    ]);
  });
});
