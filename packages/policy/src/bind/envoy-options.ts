/** A workload's `EnvoyOptions`, read off a bound model: the one place they are assembled. */
import { sidecarFiles } from '@trellis/contracts';
import type { EnvoyOptions } from '../compile/envoy.ts';
import { dataServices, own } from '../identity.ts';
import type { DataService } from '../identity.ts';
import type { BoundModel } from './types.ts';

const loopback = '127.0.0.1';

/**
 * The options `compileEnvoy` needs for `workload`'s sidecar in the environment `model` is bound to:
 * inbound ports, app endpoints, one upstream per `calls` entry, the admin port, the SVID files and
 * their SDS directory (`<proxyDir>/` + `sidecarFiles.sdsDir`), and the JWKS endpoints the environment serves. Throws,
 * naming the workload, where the environment runs no Envoy of ours (Kubernetes: Istio's).
 */
export function envoyOptions(model: BoundModel, workload: string): EnvoyOptions {
  const b = own(model.binding.workloads, workload);
  const w = own(model.workloads, workload);
  if (!b || !w) throw new Error(`workloads.${workload}: not in the model`);
  if (b.svid.kind !== 'files' || b.proxyDir === undefined)
    throw new Error(
      `workloads.${workload}: the ${model.binding.environment} environment runs no Trellis sidecar (its SVID comes over SDS)`,
    );
  const inbound = Object.values(b.inbound);
  const address = inbound[0]?.address ?? loopback;
  if (inbound.some((e) => e.address !== address))
    throw new Error(`workloads.${workload}: the inbound listeners must share one address`);
  const jwks: NonNullable<EnvoyOptions['jwks']> = {};
  for (const [name, p] of Object.entries(model.binding.identityProviders)) {
    if (!p.jwks) continue;
    // The stack's own Keycloak has a Mesh CA certificate: each sidecar verifies it against its own
    // copy of the trust bundle (readable by that workload alone), unless the environment names a file.
    const ownRoots = p.keycloak !== undefined && p.jwks.tls === true && p.jwks.caFile === undefined;
    const at = ownRoots ? { ...p.jwks, caFile: b.svid.bundle } : p.jwks;
    // A pod's own loopback is not the host's: it reaches the stack's Keycloak at Keycloak's own pod
    // (TLS to its address; the certificate is still checked for the jwksUri's host), else at the
    // host's end of its pod link.
    jwks[name] =
      b.hostAddress !== undefined && at.address === loopback
        ? { ...at, address: p.keycloak?.podAddress ?? b.hostAddress }
        : at;
  }
  // A pod reaches the collector's front (on the host's loopback) at the host's end of its link.
  const front = model.binding.tracing?.collector?.front;
  const collector =
    front !== undefined && b.hostAddress !== undefined && front.address === loopback
      ? { ...front, address: b.hostAddress }
      : front;
  return {
    workload,
    inbound: Object.fromEntries(Object.entries(b.inbound).map(([n, e]) => [n, e.port])),
    ...(address !== loopback ? { inboundAddress: address } : {}),
    app: { ...b.app },
    outbound: outboundOf(model, workload),
    ...(b.admin ? { adminPort: b.admin.port } : {}),
    ...(b.metrics && b.admin
      ? {
          metrics: {
            port: b.metrics.port,
            ...(b.metrics.address !== address ? { address: b.metrics.address } : {}),
            statsPort: b.admin.port,
          },
        }
      : {}),
    ...(collector !== undefined
      ? {
          tracing: {
            collector,
            ...(b.telemetryEgress ? { egressPort: b.telemetryEgress.port } : {}),
          },
        }
      : {}),
    sds: {
      dir: `${b.proxyDir}/${sidecarFiles.sdsDir}`,
      certChain: b.svid.cert,
      privateKey: b.svid.key,
      trustBundle: b.svid.bundle,
    },
    ...(Object.keys(jwks).length > 0 ? { jwks } : {}),
  };
}

/** One upstream per `calls` entry, in `calls` order (a sidecar listener where the app has one). */
function outboundOf(model: BoundModel, workload: string): NonNullable<EnvoyOptions['outbound']> {
  const b = model.binding.workloads[workload];
  const out: NonNullable<EnvoyOptions['outbound']> = {};
  for (const target of model.workloads[workload]?.calls ?? []) {
    if ((dataServices as readonly string[]).includes(target)) {
      const e = b?.egress[target as DataService];
      if (!e) throw new Error(`workloads.${workload}.calls: no ${target} egress in the binding`);
      out[target] = {
        ...e.upstream,
        ...(e.listen ? { listenPort: e.listen.port } : {}),
        spiffeId: e.serverSpiffeId,
      };
      continue;
    }
    const p = b?.peers[target];
    if (!p) throw new Error(`workloads.${workload}.calls: no route to ${target} in the binding`);
    out[target] = { ...p.upstream, ...(p.listen ? { listenPort: p.listen.port } : {}) };
  }
  return out;
}
