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
  it('puts orders-api in slot 2 of the stack’s /24, as its sorted position (ports) does', () => {
    expect(podWorkloads).toEqual(['orders-api']);
    expect(plan.subnet.cidr).toBe('198.18.8.0/24');
    expect(plan.slots).toMatchObject({ 'orders-api': 2 });
    expect(plan.env).toMatchObject({
      hostAddress: '198.18.8.1',
      addresses: { 'orders-api': '198.18.8.4' },
    });
    expect(podPlan(model, 28_000).env.addresses['orders-api']).toBe('198.18.28.4');
  });

  it('puts Keycloak in its fixed slot 22, whatever the model', () => {
    expect(serverPodSlots.keycloak).toBe(22);
    expect(plan.slots.keycloak).toBe(22);
    expect(plan.env.servers?.keycloak).toBe('198.18.8.24');
    expect(bound.binding.identityProviders.keycloak?.keycloak?.podAddress).toBe('198.18.8.24');
    // Only the names count: a model with a workload called keycloak.
    const clash = { ...model, workloads: { ...model.workloads, keycloak: model.workloads.ledger } };
    expect(() => podPlan(clash as ValidModel, 8000)).toThrow(
      "workloads.keycloak: the name of the stack's keycloak pod; rename it",
    );
  });

  it('relays Cassandra and orders-api’s Kafka listener (not Keycloak, in its pod), none without pods', () => {
    expect(hostRelayPorts(bound, ['orders-api'])).toEqual([8042, 8303]);
    expect(hostRelayPorts(plain, ['orders-api'])).toEqual([]);
    expect(hostRelayPorts(bound, [])).toEqual([]);
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
    ).toEqual(['127.0.0.1:8720', '127.0.0.1:8721']);
    expect(compiled(bound, 'orders-api').admin?.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 8502,
    });
    // Without pods, nothing moves off loopback.
    expect(Object.values(addresses('orders-api', plain))).toContain('127.0.0.1:8620');
  });

  it('sends the pod’s data clusters to the host’s end, JWKS to Keycloak’s pod, the ingress to the pod', () => {
    const endpoints = (w: string) =>
      JSON.stringify(compiled(bound, w).static_resources.clusters.map((c) => c.load_assignment));
    const orders = endpoints('orders-api');
    expect(orders).toContain('"address":"198.18.8.1","port_value":8042');
    expect(orders).toContain('"address":"198.18.8.1","port_value":8303');
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
    expect(endpoints('ingress')).toContain('"address":"198.18.8.4","port_value":8620');
    expect(endpoints('ledger')).toContain('"address":"127.0.0.1","port_value":8042');
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
