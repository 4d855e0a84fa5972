/**
 * The `local` environment: the whole stack on one machine, every listener on 127.0.0.1 at
 * `basePort` plus a fixed offset, so that URLs are stable (`local`: ingress 8443, Keycloak 8180) and
 * a second stack on another base (`e2e`: 28000) runs beside it. The stack's Keycloak takes over the
 * provider the model serves from a loopback realm. Workloads named in `env.pods` run as pods (ADR
 * 0012): same ports, their inbound on the pod's address, the rest on the pod's own loopback; the
 * edge's pod holds nginx too, on the pod's address, in front of the edge's inbound on its loopback.
 */
import { formatPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';
import { callersOf } from '../identity.ts';
import type { DataService } from '../identity.ts';
import type { Model } from '../schema.ts';
import { AllocationError } from './allocator.ts';
import type { Allocator, Listener, WorkloadSlot } from './allocator.ts';
import { localServers, serverMetricsListeners, type LocalServer } from './local-servers.ts';
import { localPaths, svidAt } from './local-paths.ts';
import { localTracing, localTracingListeners } from './local-tracing.ts';
import type { Endpoint, IdentityProviderBinding, LocalEnvironment } from './types.ts';

export { localPaths } from './local-paths.ts';

/** Every port of a local stack is `basePort` plus one of these. */
export const localPortOffsets = {
  ingressHttps: 443,
  keycloakHttp: 180,
  keycloakManagement: 190,
  cassandraNative: 42,
  cassandraStorage: 70,
  /** Cassandra's JMX, bound to loopback (nodetool); it must be fixed or two stacks would both take 7199. */
  cassandraJmx: 71,
  kafkaController: 93,
  kafkaInterBroker: 94,
  /** Kafka's direct client listener; one listener per client workload follows it. */
  kafkaClientsFrom: 300,
  /** The stack's Prometheus (the metrics scraper), on the host's loopback. */
  prometheus: 90,
  /** The trace pipeline (ADR 0023; `local-tracing.ts`), on the host's loopback. */
  traceCollector: 420,
  traceCollectorReceiver: 421,
  traceCollectorAdmin: 422,
  jaegerOtlp: 423,
  jaegerQuery: 424,
  jaegerQueryGrpc: 425,
  /** Each sidecar's telemetry egress (ADR 0023), one per workload, on its pod's loopback. */
  telemetryEgressFrom: 450,
  envoyAdminFrom: 500,
  /** Each sidecar's metrics listener (ADR 0020), one per workload. */
  sidecarMetricsFrom: 550,
  /** Each server's mTLS metrics front (ADR 0020; + `localServerMetricsSlots`), on its pod address. */
  serverMetricsFrom: 560,
  /** Each front's Envoy admin, and each data node's JMX exporter agent, on the server's loopback. */
  serverMetricsAdminFrom: 570,
  jmxExporterFrom: 580,
  sidecarInboundFrom: 600,
  sidecarOutboundFrom: 700,
  appFrom: 800,
} as const;

/** A named port of a local stack. */
export type LocalPortName = keyof typeof localPortOffsets;

/** The ports of a local stack at `base`. */
export function localPortsAt(base: number): Record<LocalPortName, number> {
  const out = {} as Record<LocalPortName, number>;
  for (const [k, off] of Object.entries(localPortOffsets)) out[k as LocalPortName] = base + off;
  return out;
}

/**
 * The per-workload blocks: `sidecarInboundFrom` and `appFrom` give each workload 10 ports (one per
 * model port), `sidecarOutboundFrom` 10 egress ports (data services first, then its peers in
 * `calls` order); there is room for 10 workloads.
 */
export const localBlocks = {
  workloads: 10,
  portsPerWorkload: 10,
  egressPerWorkload: 10,
  egressSlots: { cassandra: 0, kafka: 1, peersFrom: 2 },
} as const;

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);
const loopback = '127.0.0.1';

/**
 * The identity provider the local Keycloak implements: the first (by name) whose issuer is a
 * Keycloak realm on loopback (`http(s)://localhost:<port>/realms/<realm>`).
 */
export function localKeycloakProvider(model: Model): { name: string; realm: string } | PolicyError {
  for (const name of Object.keys(model.identityProviders).sort()) {
    const u = new URL(model.identityProviders[name]?.issuer ?? '');
    const realm = /^\/realms\/([^/]+)$/.exec(u.pathname)?.[1];
    if (loopbackHosts.has(u.hostname) && realm !== undefined) return { name, realm };
  }
  const have = Object.entries(model.identityProviders)
    .map(([n, p]) => `${n} ${p.issuer}`)
    .join(', ');
  return {
    path: 'identityProviders',
    reason: `none is served by the local Keycloak; declare one whose issuer is http://localhost:<port>/realms/<realm> (have: ${have || 'none'})`,
  };
}

/** The stack's Keycloak base URL, checked: http(s) on a loopback host, no path. */
function keycloakBase(baseUrl: string): URL | PolicyError {
  const path = 'environment.keycloak.baseUrl';
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    return { path, reason: `'${baseUrl}' is not a URL` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return { path, reason: `'${baseUrl}' must use http or https` };
  if (!loopbackHosts.has(u.hostname))
    return { path, reason: `'${baseUrl}' must be on a loopback host (the stack's own Keycloak)` };
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '')
    return { path, reason: `'${baseUrl}' must be scheme, host and port only` };
  return u;
}

/** What the local Keycloak adds to its provider's binding. */
export type LocalProviderExtras = Record<
  string,
  Pick<IdentityProviderBinding, 'jwks' | 'keycloak'>
>;

/**
 * Moves the provider the local Keycloak serves to `env.keycloak` (issuer and JWKS under it), in
 * `data` (a copy of the model), and checks that the model has the one edge the stack can front.
 */
export function patchLocal(
  data: Model,
  env: LocalEnvironment,
): { providers: LocalProviderExtras; errors: PolicyError[] } {
  const edges = Object.keys(data.workloads).filter((w) => data.workloads[w]?.edge);
  const errors: PolicyError[] = [];
  if (edges.length !== 1)
    errors.push({
      path: 'workloads',
      reason: `the local stack runs one nginx in front of one edge workload; the model has ${edges.length} (${edges.sort().join(', ') || 'none'})`,
    });
  const kcPod = env.pods?.servers?.keycloak;
  if (!env.keycloak) {
    if (kcPod !== undefined)
      errors.push({
        path: 'environment.pods.servers.keycloak',
        reason: 'the stack runs no Keycloak (environment.keycloak is not set)',
      });
    return { providers: {}, errors };
  }
  const u = keycloakBase(env.keycloak.baseUrl);
  const served = localKeycloakProvider(data);
  if ('path' in u) return { providers: {}, errors: [...errors, u] };
  if ('path' in served) return { providers: {}, errors: [...errors, served] };
  const idp = data.identityProviders[served.name];
  if (!idp) return { providers: {}, errors };
  const baseUrl = `${u.protocol}//${u.host}`;
  idp.issuer = `${baseUrl}/realms/${served.realm}`;
  idp.jwksUri = `${idp.issuer}/protocol/openid-connect/certs`;
  const https = u.protocol === 'https:';
  const host = u.hostname === 'localhost' ? loopback : u.hostname.replace(/^\[(.*)\]$/, '$1');
  const jwks = {
    address: host,
    port: u.port === '' ? (https ? 443 : 80) : Number(u.port),
    ...(https ? { tls: true } : {}),
    ...(env.keycloak.caFile !== undefined ? { caFile: env.keycloak.caFile } : {}),
  };
  // The address itself is checked with the other pod addresses (localPods).
  const keycloak = {
    baseUrl,
    realm: served.realm,
    ...(kcPod !== undefined ? { podAddress: kcPod } : {}),
  };
  return { providers: { [served.name]: { jwks, keycloak } }, errors };
}

/** The highest port a stack at `base` uses: the end of the app block. */
const lastOffset = localPortOffsets.appFrom + localBlocks.workloads * localBlocks.portsPerWorkload;

/** The allocator of a local stack, or what keeps the model from fitting into it. */
export function localAllocator(
  model: Model,
  env: LocalEnvironment,
): Allocator | { errors: PolicyError[] } {
  const base = env.basePort;
  if (!Number.isInteger(base) || base < 1024 || base + lastOffset > 65_535)
    return {
      errors: [
        {
          path: 'environment.basePort',
          reason: `must be an integer in [1024, ${65_535 - lastOffset}], got ${base}`,
        },
      ],
    };
  const names = Object.keys(model.workloads);
  if (names.length > localBlocks.workloads)
    return {
      errors: [
        {
          path: 'workloads',
          reason: `the local stack has ports for ${localBlocks.workloads} workloads, the model has ${names.length}`,
        },
      ],
    };
  const pods = localPods(model, env);
  if ('errors' in pods) return pods;
  const ports = localPortsAt(base);
  const paths = localPaths(env.stackDir);
  const at = (port: number): Endpoint => ({ address: loopback, port });
  const podOf = (w: WorkloadSlot): string | undefined => pods.addresses.get(w.name);
  // What a workload dials to reach a server of the stack: loopback from the host; from a pod, the
  // server's own pod, or else the host's end of its pod link.
  const server = (w: WorkloadSlot, port: number, name: LocalServer): Endpoint => ({
    address: podOf(w) === undefined ? loopback : (pods.servers[name] ?? pods.hostAddress),
    port,
  });
  const egress = (w: WorkloadSlot, slot: number) =>
    at(ports.sidecarOutboundFrom + w.sorted * localBlocks.egressPerWorkload + slot);
  const inBlock = (from: number, w: WorkloadSlot, k: number) => {
    if (k >= localBlocks.portsPerWorkload)
      throw new AllocationError(
        formatPath(['workloads', w.name, 'ports']),
        `the local stack has room for ${localBlocks.portsPerWorkload} ports per workload, got ${w.spec.ports.length}`,
      );
    return at(from + localBlocks.portsPerWorkload * w.sorted + k);
  };
  const kafkaListener = (w: WorkloadSlot) =>
    server(w, ports.kafkaClientsFrom + 1 + w.sorted, 'kafka');
  // The edge's inbound is plaintext from nginx, which shares its pod: it stays on the pod's loopback;
  // every metrics listener (mTLS) is on the pod's address, for the host's Prometheus.
  const podPrivate = (w: WorkloadSlot, role: string) =>
    role !== 'metrics' && (role !== 'inbound' || w.spec.edge === true);
  return {
    // A pod's private listeners live on its own loopback; its inbound on the bridge, as the host's.
    network: (w, role) =>
      podOf(w) !== undefined && podPrivate(w, role) ? `pod ${w.name}` : 'loopback',
    inbound: (w, _p, k) => {
      const e = inBlock(ports.sidecarInboundFrom, w, k);
      const pod = podOf(w);
      return pod === undefined || w.spec.edge ? e : { ...e, address: pod };
    },
    edgeListen: (edge) => ({
      address: pods.addresses.get(edge) ?? loopback,
      port: ports.ingressHttps,
    }),
    app: (w, _p, k) => (w.spec.edge ? undefined : inBlock(ports.appFrom, w, k)),
    admin: (w) => at(ports.envoyAdminFrom + w.sorted),
    metrics: (w) => ({ address: podOf(w) ?? loopback, port: ports.sidecarMetricsFrom + w.sorted }),
    scraper: () => ({
      svid: svidAt(paths.pkiDir(localScraperName)),
      listen: at(ports.prometheus),
    }),
    telemetryEgress: (w) => (w.spec.edge ? undefined : at(ports.telemetryEgressFrom + w.sorted)),
    tracing: () => localTracing(ports, (name) => svidAt(paths.pkiDir(name))),
    dataEgress: (w, service: DataService) =>
      service === 'cassandra'
        ? {
            listen: egress(w, localBlocks.egressSlots.cassandra),
            upstream: server(w, ports.cassandraNative, 'cassandra'),
          }
        : { listen: egress(w, localBlocks.egressSlots.kafka), upstream: kafkaListener(w) },
    peerListen: (w, call) => {
      if (w.spec.edge) return undefined; // the edge's routes reach the peers directly
      const slot = localBlocks.egressSlots.peersFrom + call.peer;
      // Out of reach while a stack holds 10 workloads (8 peers at most); kept for larger blocks.
      if (slot >= localBlocks.egressPerWorkload)
        throw new AllocationError(
          formatPath(['workloads', w.name, 'calls', call.index]),
          `the local stack has ${localBlocks.egressPerWorkload - localBlocks.egressSlots.peersFrom} egress ports per workload for peers`,
        );
      return egress(w, slot);
    },
    svid: (w) => svidAt(paths.pkiDir(w.name)),
    proxyDir: (w) => paths.runDir(`${w.name}-sidecar`),
    hostAddress: (w) => (podOf(w) === undefined ? undefined : pods.hostAddress),
    reserved: () => localReserved(model, ports, pods),
    dataServices: () => ({
      cassandra: at(ports.cassandraNative),
      kafka: at(ports.kafkaClientsFrom),
    }),
  };
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** The local stack's Prometheus: its certificate directory (`pki/<name>`) and process directory. */
export const localScraperName = 'prometheus';

/** Where the pods are, as checked: the host's end, the pod workloads', the server pods'. */
interface CheckedPods {
  hostAddress: string;
  addresses: Map<string, string>;
  servers: Partial<Record<LocalServer, string>>;
}

/** `env.pods` checked: known workloads and servers, IPv4 addresses off loopback, none shared. */
function localPods(model: Model, env: LocalEnvironment): CheckedPods | { errors: PolicyError[] } {
  const addresses = new Map<string, string>();
  const servers: Partial<Record<LocalServer, string>> = {};
  if (env.pods === undefined) return { hostAddress: loopback, addresses, servers };
  const errors: PolicyError[] = [];
  const seen = new Map<string, string>();
  const check = (path: string, a: string): boolean => {
    if (!ipv4.test(a) || a.startsWith('127.') || a.startsWith('0.')) {
      errors.push({ path, reason: `'${a}' is not an IPv4 address off loopback` });
      return false;
    }
    const other = seen.get(a);
    if (other !== undefined) {
      errors.push({ path, reason: `'${a}' is already ${other}` });
      return false;
    }
    seen.set(a, path);
    return true;
  };
  check('environment.pods.hostAddress', env.pods.hostAddress);
  for (const [w, a] of Object.entries(env.pods.addresses)) {
    const path = formatPath(['environment', 'pods', 'addresses', w]);
    if (!Object.hasOwn(model.workloads, w))
      errors.push({ path, reason: `${w} is not a workload of the model` });
    else if (check(path, a)) addresses.set(w, a);
  }
  for (const [name, a] of Object.entries(env.pods.servers ?? {})) {
    const path = formatPath(['environment', 'pods', 'servers', name]);
    const known = (localServers as readonly string[]).includes(name);
    if (!known)
      errors.push({
        path,
        reason: `${name} is not a server of the stack (${localServers.join(', ')})`,
      });
    else if (typeof a !== 'string')
      errors.push({ path, reason: `must be an IPv4 address, got ${String(a)}` });
    else if (check(path, a)) servers[name as LocalServer] = a;
  }
  return errors.length > 0 ? { errors } : { hostAddress: env.pods.hostAddress, addresses, servers };
}

/**
 * The stack's own listeners: its servers' fixed ports and Kafka's per-workload listeners (for a
 * workload in a pod, where its sidecar dials them: Kafka's pod, or the host's end of the pod link).
 */
function localReserved(
  model: Model,
  ports: Record<LocalPortName, number>,
  pods: CheckedPods,
): Listener[] {
  const fixed: LocalPortName[] = [
    'ingressHttps',
    'keycloakHttp',
    'keycloakManagement',
    'cassandraNative',
    'cassandraStorage',
    'cassandraJmx',
    'kafkaController',
    'kafkaInterBroker',
    'kafkaClientsFrom',
    ...(model.metrics !== undefined ? (['prometheus'] as const) : []),
  ];
  const sorted = Object.keys(model.workloads).sort();
  const edge = Object.keys(model.workloads).find((w) => model.workloads[w]?.edge);
  const edgePod = edge === undefined ? undefined : pods.addresses.get(edge);
  return [
    // nginx in the edge's pod; 127.0.0.1:ingressHttps is then the host's relay to it.
    ...(edge !== undefined && edgePod !== undefined
      ? [
          {
            network: `pod ${edge}`,
            endpoint: { address: edgePod, port: ports.ingressHttps },
            path: 'environment.ports.ingressHttps',
            what: `nginx's TLS listener in the pod of ${edge}`,
          },
        ]
      : []),
    ...fixed.map((name) => ({
      network: 'loopback',
      endpoint: { address: loopback, port: ports[name] },
      path: `environment.ports.${name}`,
      what: `the stack's ${name} listener`,
    })),
    ...(model.metrics !== undefined ? serverMetricsListeners(ports) : []),
    ...(model.tracing !== undefined ? localTracingListeners(ports) : []),
    ...callersOf(model, 'kafka').map((w) => ({
      network: 'loopback',
      endpoint: {
        address: pods.addresses.has(w) ? (pods.servers.kafka ?? pods.hostAddress) : loopback,
        port: ports.kafkaClientsFrom + 1 + sorted.indexOf(w),
      },
      path: formatPath(['environment', 'kafka', 'listeners', w]),
      what: `Kafka's listener for ${w}`,
    })),
  ];
}
