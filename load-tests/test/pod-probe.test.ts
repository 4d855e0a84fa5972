import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModel } from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import type { PlanRoute } from '../src/plan-types.ts';
import { meshProbe } from '../src/plan.ts';
import { percentile, podHopResult, podProbePlan } from '../src/pod-probe.ts';
import { checkTarget, targetFromStackOutputs, type LoadTarget } from '../src/target.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model = parsed.model;

const launch = {
  netns: 'trellis.e2e.orders-api',
  uid: 995,
  gid: 994,
  reveal: ['/root/.cache/trellis'],
};

const ingressLaunch = { ...launch, netns: 'trellis.e2e.ingress', uid: 997, gid: 996 };

/** A stack's outputs with orders-api and the ingress in pods (its inbound on the pod address, its app inside). */
const outputs = {
  ingressUrl: 'https://localhost:28443',
  trustBundle: '/repo/.trellis/e2e/pki/root.pem',
  principals: {
    tokenUrl: 'https://localhost:28180/realms/trellis/protocol/openid-connect/token',
    cliClientId: 'trellis-cli',
    users: { alice: 'pw-a' },
  },
  sidecars: {
    ingress: {
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/ingress',
      adminUrl: 'http://127.0.0.1:28500',
      inbound: { http: 28600 },
      certDir: '/repo/.trellis/e2e/pki/ingress',
    },
    'orders-api': {
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/orders-api',
      adminUrl: 'http://127.0.0.1:28502',
      inbound: { http: 28620 },
      certDir: '/repo/.trellis/e2e/pki/orders-api',
    },
  },
  services: { 'orders-api': { url: 'http://127.0.0.1:28820' } },
  model: {
    binding: {
      workloads: {
        'orders-api': { inbound: { http: { address: '198.18.28.4', port: 28620 } } },
        ingress: { inbound: { http: { address: '127.0.0.1', port: 28600 } } },
      },
    },
  },
  pods: {
    'orders-api': { address: '198.18.28.4', user: 'trellis-e2e-orders-api', launch },
    ingress: { address: '198.18.28.2', user: 'trellis-e2e-ingress', launch: ingressLaunch },
  },
};

const read: PlanRoute = {
  name: 'get-order',
  recipe: 'get-order',
  method: 'GET',
  path: '/orders/{id}',
};

describe('the per-hop probe with a pod backend', () => {
  const target = targetFromStackOutputs(outputs, { model });

  it('dials the sidecar at its pod address and names the pod', () => {
    expect(target.mesh?.sidecarUrl).toBe('https://198.18.28.4:28620');
    expect(target.mesh?.pod).toEqual(launch);
    // The ingress Envoy's listener is inside the ingress pod (its loopback): no ingress path.
    expect(target.mesh?.ingressUrl).toBeUndefined();
    // A pod sidecar's admin is scraped from inside its pod.
    expect(target.envoyAdmins).toEqual([
      { name: 'ingress', url: 'http://127.0.0.1:28500', pod: ingressLaunch },
      { name: 'orders-api', url: 'http://127.0.0.1:28502', pod: launch },
    ]);
    expect(checkTarget(JSON.parse(JSON.stringify(target)))).toEqual(target);
  });

  it('leaves k6 the host-side paths (edge, sidecar) and the ingress pod as one hop', () => {
    const m = meshProbe(target, read);
    expect(m?.paths.map((p) => p.name)).toEqual(['edge', 'sidecar']);
    expect(m?.hops).toEqual([
      { name: 'ingress-gateway', outer: 'edge', inner: 'sidecar', envoy: false },
    ]);
  });

  it('keeps the ingress path and its two hops while the ingress runs on the host', () => {
    const hostIngress = {
      ...outputs,
      pods: { 'orders-api': outputs.pods['orders-api'] },
      model: {
        binding: {
          workloads: {
            ...outputs.model.binding.workloads,
            ingress: { inbound: { http: { address: '127.0.0.1', port: 28600 } } },
          },
        },
      },
    };
    const t = targetFromStackOutputs(hostIngress, { model });
    expect(t.mesh?.ingressUrl).toBe('http://127.0.0.1:28600');
    const m = meshProbe(t, read);
    expect(m?.paths.map((p) => p.name)).toEqual(['edge', 'ingress', 'sidecar']);
    expect(m?.hops.map((h) => h.name)).toEqual(['ingress-envoy', 'nginx']);
  });

  it('gives the in-pod probe the sidecar and direct paths, and the backend sidecar hop', () => {
    expect(podProbePlan(target, read)).toEqual({
      pod: launch,
      route: 'get-order',
      path: '/orders/{id}',
      sidecarUrl: 'https://198.18.28.4:28620',
      appUrl: 'http://127.0.0.1:28820',
      xfcc: 'URI=spiffe://trellis.local/ns/trellis/sa/ingress',
      payloadHeader: 'x-jwt-payload',
      hop: { name: 'get-order-sidecar', outer: 'sidecar', inner: 'direct', envoy: true },
    });
  });

  it('plans no in-pod probe without a pod, a client certificate, the app or a read route', () => {
    const hostOnly: Record<string, unknown> = { ...outputs };
    delete hostOnly.pods;
    // Everything on the host, as before pods: the edge listener on loopback too.
    const onHost = targetFromStackOutputs(hostOnly, { model });
    expect(podProbePlan(onHost, read)).toBeNull();
    // Without a pod, k6 keeps every path, the direct one included (the host-side probe as before).
    expect(meshProbe(onHost, read)?.paths.map((p) => p.name)).toEqual([
      'edge',
      'ingress',
      'sidecar',
      'direct',
    ]);
    const mesh = target.mesh ?? {};
    const without = (k: 'clientCert' | 'appUrl'): LoadTarget => {
      const m = { ...mesh };
      delete m[k];
      return { ...target, mesh: m };
    };
    expect(podProbePlan(without('clientCert'), read)).toBeNull();
    expect(podProbePlan(without('appUrl'), read)).toBeNull();
    expect(podProbePlan(target, undefined)).toBeNull();
  });

  it('refuses a pod launch that is not a Trellis pod or runs as root, naming the field', () => {
    const bad = (pod: unknown): unknown => ({ ...target, mesh: { ...target.mesh, pod } });
    expect(() => checkTarget(bad({ ...launch, netns: 'other' }))).toThrow(
      'target.mesh.pod.netns: must name a Trellis pod namespace',
    );
    expect(() => checkTarget(bad({ ...launch, uid: 0 }))).toThrow(
      'target.mesh.pod.uid: must be a non-root id',
    );
    expect(() => checkTarget(bad({ ...launch, reveal: [1] }))).toThrow(
      'target.mesh.pod.reveal: must be a list of absolute paths',
    );
  });
});

describe('the in-pod hop in the report', () => {
  const hop = {
    name: 'get-order-sidecar',
    outer: 'sidecar',
    inner: 'direct',
    envoy: true,
  } as const;

  it('interpolates percentiles as k6 does, and has none for no samples', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5], 100)).toBe(5);
    expect(percentile([], 99)).toBeNull();
  });

  it('judges the paired differences by the mesh budget, with k6 hop threshold keys', () => {
    const samples = { sidecar: [2, 3], direct: [1, 1], diffs: [1, 2], failures: 0, requests: 4 };
    const held = podHopResult(hop, samples, { p50Ms: 3, p99Ms: 5 });
    expect(held.hop.breached).toEqual([]);
    expect(held.hop).toMatchObject({ count: 2, p50: 1.5, deltaP50: 1.5 });
    const broken = podHopResult(hop, samples, { p50Ms: 0.3, p99Ms: 1 });
    expect(broken.hop.breached).toEqual([
      'trellis_mesh_overhead p(50)<=0.3',
      'trellis_mesh_overhead p(99)<=1',
    ]);
    expect(broken.thresholds.map((t) => t.key)).toEqual([
      'trellis_mesh_overhead{hop:get-order-sidecar,phase:measure}',
      'trellis_mesh_overhead{hop:get-order-sidecar,phase:measure}',
    ]);
    expect(podHopResult(hop, samples).thresholds).toEqual([]);
  });
});
