// Unit tests of the pods setting's pure pieces: where the pod workloads go, what the host relays for
// them, and the sidecar config that follows from the binding.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sidecarArtefacts, type SidecarCompileOptions } from '@trellis/components/local/sidecar';
import { toolchainReveal } from '@trellis/components/local/pods-impl';
import { bindOrThrow, parseModel, type ValidModel } from '@trellis/policy';
import { localEnvironment, podPlan, podWorkloads, serverPodSlots } from '../src/context.ts';
import { hostRelayPorts, sidecarPlan } from '../src/mesh.ts';

const model = ((): ValidModel => {
  const r = parseModel(readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  return r.model;
})();
const plan = podPlan(model, 8000);
const bound = bindOrThrow(model, localEnvironment(8000, '/stack', plan.env), 'local with pods');
const plain = bindOrThrow(model, localEnvironment(8000, '/stack'), 'local');

describe('pod plan', () => {
  it('makes every workload a pod, in the slot of its sorted position (as its ports)', () => {
    expect(podWorkloads(model)).toEqual(['ingress', 'ledger', 'orders-api', 'orders-writer']);
    expect(plan.subnet.cidr).toBe('198.18.8.0/24');
    expect(plan.slots).toEqual({
      ingress: 0,
      ledger: 1,
      'orders-api': 2,
      'orders-writer': 3,
      cassandra: 20,
      kafka: 21,
      keycloak: 22,
    });
    expect(plan.env).toEqual({
      hostAddress: '198.18.8.1',
      addresses: {
        ingress: '198.18.8.2',
        ledger: '198.18.8.3',
        'orders-api': '198.18.8.4',
        'orders-writer': '198.18.8.5',
      },
      servers: { cassandra: '198.18.8.22', kafka: '198.18.8.23', keycloak: '198.18.8.24' },
    });
    expect(podPlan(model, 28_000).env.addresses['orders-api']).toBe('198.18.28.4');
    expect(podPlan(model, 28_000).env.servers?.cassandra).toBe('198.18.28.22');
  });

  it('puts Keycloak in its fixed slot 22, whatever the model', () => {
    expect(serverPodSlots.keycloak).toBe(22);
    expect(plan.slots.keycloak).toBe(22);
    expect(plan.env.servers?.keycloak).toBe('198.18.8.24');
    expect(bound.binding.identityProviders.keycloak?.keycloak?.podAddress).toBe('198.18.8.24');
    // Only the names count: a model with a workload called keycloak.
    const clash = { ...model, workloads: { ...model.workloads, keycloak: model.workloads.ledger } };
    expect(() => podPlan(clash as ValidModel, 8000)).toThrow(
      "workloads.keycloak: the name is the stack's keycloak server pod's",
    );
  });

  it('relays only the trace collector’s front at the host’s end once every server is a pod; nothing without pods', () => {
    const all = podWorkloads(model);
    // The collector and Jaeger run on the host (ADR 0023): the pods reach the front through the relay.
    expect(hostRelayPorts(bound, all)).toEqual([8420]);
    expect(hostRelayPorts(plain, all)).toEqual([]);
    expect(hostRelayPorts(bound, [])).toEqual([]);
  });

  it('puts nginx on the ingress pod’s address, in front of the edge inbound on its loopback', () => {
    expect(bound.binding.edge?.listen).toEqual({ address: '198.18.8.2', port: 8443 });
    expect(bound.binding.workloads.ingress?.inbound.http).toEqual({
      address: '127.0.0.1',
      port: 8600,
    });
    expect(plain.binding.edge?.listen).toEqual({ address: '127.0.0.1', port: 8443 });
  });
});

describe('the pod’s sidecar config', () => {
  const compiled = (m: typeof bound, w: string) => {
    const { certDir: _c, dir: _d, ...o } = sidecarPlan(m, w);
    const opts: SidecarCompileOptions = o;
    const svid = { cert: '/p/cert.pem', key: '/p/key.pem', bundle: '/p/bundle.pem' };
    return sidecarArtefacts(m, opts, '/stack/run/x', svid).bootstrap;
  };
  const addresses = (w: string, m = bound) =>
    Object.fromEntries(
      compiled(m, w).static_resources.listeners.map((l) => [
        l.name,
        `${l.address.socket_address.address}:${l.address.socket_address.port_value}`,
      ]),
    );

  it('binds the inbound on the pod address and the egress and admin on the pod’s loopback', () => {
    const a = addresses('orders-api');
    expect(Object.values(a)).toContain('198.18.8.4:8620');
    expect(
      Object.values(a)
        .filter((v) => v.startsWith('127.0.0.1:'))
        .sort(),
    ).toEqual(['127.0.0.1:8452', '127.0.0.1:8720', '127.0.0.1:8721']); // with the telemetry egress (ADR 0023)
    expect(compiled(bound, 'orders-api').admin?.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 8502,
    });
    // Without pods, nothing moves off loopback.
    expect(Object.values(addresses('orders-api', plain))).toContain('127.0.0.1:8620');
  });

  it('binds the ledger’s inbound on its pod, and the edge’s inbound and admin inside its pod', () => {
    const ledger = addresses('ledger');
    expect(Object.values(ledger)).toContain('198.18.8.3:8610');
    expect(
      Object.values(ledger)
        .filter((v) => v.startsWith('127.0.0.1:'))
        .sort(),
    ).toEqual(['127.0.0.1:8451', '127.0.0.1:8710', '127.0.0.1:8711']);
    // The edge's plaintext inbound for nginx is on the pod's loopback; only its metrics listener
    // (mTLS, the scraper's SPIFFE ID alone) is on the pod's address, for the host's Prometheus.
    expect(Object.values(addresses('ingress'))).toEqual(['127.0.0.1:8600', '198.18.8.2:8550']);
    const metrics = compiled(bound, 'ingress').static_resources.listeners.find(
      (l) => l.name === 'metrics',
    );
    expect(metrics?.filter_chains[0]?.transport_socket?.typed_config).toMatchObject({
      require_client_certificate: true,
    });
    expect(compiled(bound, 'ingress').admin?.address.socket_address.address).toBe('127.0.0.1');
  });

  it('sends the pods’ data clusters to the server pods, JWKS to Keycloak’s pod, the ingress to the pod', () => {
    const endpoints = (w: string, m = bound) =>
      JSON.stringify(compiled(m, w).static_resources.clusters.map((c) => c.load_assignment));
    const orders = endpoints('orders-api');
    expect(orders).toContain('"address":"198.18.8.22","port_value":8042');
    expect(orders).toContain('"address":"198.18.8.23","port_value":8303');
    expect(orders).not.toContain('"address":"198.18.8.1","port_value":8042');
    expect(orders).toContain('"address":"198.18.8.24","port_value":8180');
    // TLS to the pod's address, the certificate still checked for the jwksUri's host.
    const jwks = compiled(bound, 'orders-api').static_resources.clusters.find(
      (c) => c.name === 'jwks_keycloak',
    );
    expect(JSON.stringify(jwks?.transport_socket)).toContain('"sni":"localhost"');
    expect(JSON.stringify(jwks?.transport_socket)).toContain(
      '{"san_type":"DNS","matcher":{"exact":"localhost"}}',
    );
    expect(orders).not.toContain('"address":"127.0.0.1","port_value":8042');
    const ledger = endpoints('ledger');
    expect(ledger).toContain('"address":"198.18.8.22","port_value":8042');
    expect(ledger).toContain('"address":"198.18.8.23","port_value":8302');
    expect(ledger).not.toContain('"address":"127.0.0.1","port_value":8042');
    expect(endpoints('ingress')).toContain('"address":"198.18.8.4","port_value":8620');
    expect(endpoints('ledger', plain)).toContain('"address":"127.0.0.1","port_value":8042');
  });
});

describe('toolchain reveal', () => {
  it('reveals a cache under a directory closed to others, and not one under open ones', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'trellis-reveal-'));
    try {
      chmodSync(tmp, 0o755);
      mkdirSync(join(tmp, 'open/cache'), { recursive: true, mode: 0o755 });
      mkdirSync(join(tmp, 'closed/cache'), { recursive: true, mode: 0o755 });
      chmodSync(join(tmp, 'closed'), 0o700); // as /root
      expect(toolchainReveal(join(tmp, 'open/cache'))).toEqual([]);
      expect(toolchainReveal(join(tmp, 'closed/cache'))).toEqual([join(tmp, 'closed/cache')]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
