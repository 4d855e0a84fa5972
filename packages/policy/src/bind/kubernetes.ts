/**
 * The `kubernetes` environment: one cluster with Istio sidecars and NGINX Gateway Fabric at the edge.
 * It differs from the model as written in three ways: each identity provider's issuer and JWKS are
 * the ones deployed there; each route host is the environment's host for it; and the edge workload
 * is NGF's data plane, whose identity is the Gateway's ServiceAccount in the gateway namespace.
 * Every other workload gets its namespace written out, so that moving the Gateway API objects to
 * the gateway namespace does not move the workloads.
 */
import { formatPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';
import type { Model } from '../schema.ts';
import { AllocationError } from './allocator.ts';
import type { Allocator, Listener, WorkloadSlot } from './allocator.ts';
import type { KubernetesEnvironment } from './types.ts';

/**
 * Istio's sidecar ports in every pod besides its admin (15000): outbound 15001, debug 15004, inbound
 * 15006, HBONE 15008 and 15009, merged telemetry 15020, health 15021, DNS 15053, Envoy telemetry
 * 15090 (https://istio.io/latest/docs/ops/deployment/requirements/#ports-used-by-istio). An app
 * port on one of them would never be reached.
 */
export const istioSidecarPorts = [15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090];
/** The Envoy admin port of Istio's sidecar (localhost only). */
export const istioAdminPort = 15000;
/**
 * The SDS server istio-agent runs for its Envoy (istio pkg/istio-agent `LocalSDS`): the SVID never
 * touches a file.
 */
export const istioSdsSocket = '/etc/istio/proxy/SDS';

/** Writes the cluster's issuers, hosts, edge identity and namespaces into `data` (a copy). */
export function patchKubernetes(data: Model, env: KubernetesEnvironment): PolicyError[] {
  const errors: PolicyError[] = [];
  for (const [provider, deployed] of Object.entries(env.issuers)) {
    const idp = Object.hasOwn(data.identityProviders, provider)
      ? data.identityProviders[provider]
      : undefined;
    if (!idp) {
      errors.push({
        path: formatPath(['environment', 'issuers', provider]),
        reason: `"${provider}" is not an identity provider of the model`,
      });
      continue;
    }
    idp.issuer = deployed.issuer;
    idp.jwksUri = deployed.jwksUri;
  }
  for (const [name, route] of Object.entries(data.routes)) {
    const provider = route.auth?.provider;
    if (provider !== undefined && !Object.hasOwn(env.issuers, provider))
      errors.push({
        path: formatPath(['routes', name, 'auth', 'provider']),
        reason: `identity provider "${provider}" has no issuer in this environment (environment.issuers)`,
      });
    route.hosts = route.hosts.map((h, i) => {
      const mapped = Object.hasOwn(env.hosts, h) ? env.hosts[h] : undefined;
      if (mapped !== undefined) return mapped;
      errors.push({
        path: formatPath(['routes', name, 'hosts', i]),
        reason: `no environment host for the model host "${h}" (environment.hosts)`,
      });
      return h;
    });
  }
  const edges = Object.keys(data.workloads).filter((w) => data.workloads[w]?.edge);
  if (edges.length > 1)
    errors.push({
      path: 'workloads',
      reason: `a cluster has one gateway, the model has ${edges.length} edge workloads (${edges.join(', ')})`,
    });
  for (const w of Object.values(data.workloads)) {
    if (w.edge) {
      w.namespace = env.gateway.namespace;
      w.serviceAccount = env.gateway.serviceAccount;
    } else {
      w.namespace = w.namespace ?? data.namespace;
    }
  }
  return errors;
}

/** The allocator of a cluster: Service DNS names, pods with Istio sidecars, SVIDs over SDS. */
export function kubernetesAllocator(model: Model, env: KubernetesEnvironment): Allocator {
  const domain = env.clusterDomain ?? 'cluster.local';
  const nsOf = (w: WorkloadSlot) => w.spec.namespace ?? model.namespace;
  const service = (w: WorkloadSlot) =>
    `${w.spec.serviceAccount ?? w.name}.${nsOf(w)}.svc.${domain}`;
  const pod = (w: WorkloadSlot) => `pod:${nsOf(w)}/${w.name}`;
  return {
    network: (w, role) => (role === 'inbound' ? 'cluster' : pod(w)),
    inbound: (w, p) => ({ address: service(w), port: w.spec.edge ? env.gateway.port : p.port }),
    // The app listens on the pod's addresses; Istio's inbound listener hands it the connection.
    app: (w, p) => (w.spec.edge ? undefined : { address: '0.0.0.0', port: p.port }),
    admin: () => ({ address: '127.0.0.1', port: istioAdminPort }),
    dataEgress: (w, svc, call) => {
      const upstream = env.dataServices?.[svc];
      if (!upstream)
        throw new AllocationError(
          formatPath(['workloads', w.name, 'calls', call.index]),
          `the environment has no endpoint for ${svc} (environment.dataServices.${svc})`,
        );
      // The app dials the Service itself; its sidecar intercepts and originates mTLS.
      return { upstream };
    },
    peerListen: () => undefined,
    svid: () => ({ kind: 'sds', socket: istioSdsSocket }),
    proxyDir: () => undefined,
    reserved: () => kubernetesReserved(model),
    dataServices: () => ({ ...env.dataServices }),
  };
}

/** Istio's ports in the pod of every non-edge workload. */
function kubernetesReserved(model: Model): Listener[] {
  return Object.entries(model.workloads)
    .filter(([, w]) => !w.edge)
    .flatMap(([name, w]) =>
      istioSidecarPorts.map((port) => ({
        network: `pod:${w.namespace ?? model.namespace}/${name}`,
        endpoint: { address: '0.0.0.0', port },
        path: 'environment.istio',
        what: `Istio's sidecar port`,
      })),
    );
}
