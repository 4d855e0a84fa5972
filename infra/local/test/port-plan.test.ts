// Pins the local stack's plan for trellis.yaml: every port, address, issuer and sidecar option the
// program hands its components, for the `local` (8000) and `e2e` (28000) bases. The fixture was
// written by the code before `bind` existed; `./trellis up` over an existing stack reports no changes
// only while this holds. Never regenerate it to make a change pass: a difference here moves a port.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sidecarArtefacts } from '@trellis/components/local/sidecar';
import { parseModel, type ValidModel } from '@trellis/policy';
import { planDataPorts } from '../src/data.ts';
import { localIdentityModel, localProvider } from '../src/identity.ts';
import {
  edgeWorkload,
  PAYLOAD_HEADER,
  planMeshPorts,
  planOutbound,
  serviceEnv,
} from '../src/mesh.ts';
import { kafkaDirectPort, portsAt } from '../src/ports.ts';

const pinned = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures/local-plan.json'), 'utf8'),
) as Record<string, Record<string, unknown>>;

function repoModel(edit?: (m: { workloads: Record<string, { calls: string[] }> }) => void) {
  const r = parseModel(readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  if (!edit) return r.model;
  const data = structuredClone(r.model) as unknown as {
    workloads: Record<string, { calls: string[] }>;
  };
  edit(data);
  const v = parseModel(JSON.stringify(data));
  if (!v.ok) throw new Error('variant is invalid');
  return v.model;
}

const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

function planAt(model: ValidModel, base: number) {
  const ports = portsAt(base);
  const env = localIdentityModel(model, ports.keycloakHttp);
  const plan = planMeshPorts(env, ports);
  const data = planDataPorts(model, ports);
  const provider = localProvider(env).name;
  const edge = edgeWorkload(env);
  const sidecars: Record<string, unknown> = {};
  const envoyHashes: Record<string, string> = {};
  for (const w of Object.keys(env.workloads).sort()) {
    const p = plan[w];
    if (!p) throw new Error(w);
    const opts = {
      workload: w,
      adminPort: p.adminPort,
      inbound: p.inbound,
      app: Object.fromEntries(
        Object.entries(p.app).map(([n, port]) => [n, { address: '127.0.0.1', port }]),
      ),
      outbound: planOutbound(env, ports, plan, data.egress, w),
      jwks: { [provider]: { address: '127.0.0.1', port: ports.keycloakHttp } },
      payloadHeader: PAYLOAD_HEADER,
    };
    sidecars[w] = opts;
    const pki = `/stack/pki/${w}`;
    const svid = { cert: `${pki}/cert.pem`, key: `${pki}/key.pem`, bundle: `${pki}/bundle.pem` };
    envoyHashes[w] = sha(
      sidecarArtefacts(env, { ...opts, nodeId: `${w}-sidecar` }, `/stack/run/${w}-sidecar`, svid),
    );
  }
  const idp = env.identityProviders[provider];
  const cassandra = {
    host: '127.0.0.1',
    port: ports.cassandraNative,
    spiffeId: '',
    localDataCenter: 'datacenter1',
  };
  return {
    ports,
    kafkaDirect: kafkaDirectPort(ports),
    issuer: idp?.issuer,
    jwksUri: idp?.jwksUri,
    edge,
    ingress: {
      listen: { address: '127.0.0.1', port: ports.ingressHttps },
      upstream: { address: '127.0.0.1', port: Object.values(plan[edge]?.inbound ?? {})[0] },
    },
    sidecars,
    envoyHashes,
    egress: data.egress,
    kafkaListeners: data.kafkaListeners,
    serviceEnv: Object.fromEntries(
      ['ledger', 'orders-api'].map((w) => [
        w,
        serviceEnv(env, w, { egress: data.egress, cassandra }),
      ]),
    ),
    appPorts: Object.fromEntries(
      Object.entries(plan).map(([w, p]) => [w, Object.values(p.app)[0] ?? null]),
    ),
  };
}

describe('the local plan of trellis.yaml (pinned)', () => {
  it.each([8000, 28000])('is unchanged at base %i', (base) => {
    expect(planAt(repoModel(), base)).toEqual(pinned[String(base)]);
  });

  it('gives a backend peer call its egress listener after the data services', () => {
    const model = repoModel((m) => m.workloads['orders-api']?.calls.push('ledger'));
    const ports = portsAt(8000);
    const plan = planMeshPorts(model, ports);
    const egress = planDataPorts(model, ports).egress;
    expect({
      'orders-api': planOutbound(model, ports, plan, egress, 'orders-api'),
      ingress: planOutbound(model, ports, plan, egress, 'ingress'),
    }).toEqual(pinned.peerVariant);
  });
});
