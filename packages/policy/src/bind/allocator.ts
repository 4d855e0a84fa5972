/**
 * The address/port allocator an environment supplies to `bind`, and the collision check that every
 * allocation goes through: two listeners on one port of one network make `bind` fail.
 */
import type { PolicyError } from '../errors.ts';
import type { DataService } from '../identity.ts';
import type { PortSpec, Workload } from '../schema.ts';
import type { Endpoint, SvidLocation, TracingPlacement } from './types.ts';

/** One workload as the allocator sees it. */
export interface WorkloadSlot {
  name: string;
  spec: Workload;
  /** Position among the model's workload names, sorted (so that YAML order moves no port). */
  sorted: number;
  /** Position in the model as written. */
  declared: number;
}

/** One `calls` entry of a workload: its position in `calls`, and among the peer calls only. */
export interface CallSlot {
  index: number;
  peer: number;
}

/** Which listeners of a workload an endpoint is: collisions are looked for per network. */
export type ListenerRole = 'inbound' | 'app' | 'admin' | 'egress' | 'metrics';

/** A listener in a network, named by a path and a description for errors. */
export interface Listener {
  network: string;
  endpoint: Endpoint;
  path: string;
  what: string;
}

/**
 * Where an environment puts things. Methods throw {@link AllocationError} for what does not fit
 * (naming the model path); `bind` collects those as errors.
 */
export interface Allocator {
  /** The network a workload's listener of `role` lives in (one loopback, a pod, the cluster). */
  network(w: WorkloadSlot, role: ListenerRole): string;
  inbound(w: WorkloadSlot, port: PortSpec, k: number): Endpoint;
  /** Where the app listens on its `k`-th port; undefined where there is no app. */
  app(w: WorkloadSlot, port: PortSpec, k: number): Endpoint | undefined;
  admin(w: WorkloadSlot): Endpoint | undefined;
  /**
   * The sidecar's metrics listener (ADR 0020), asked only when the model has a metrics scraper;
   * undefined (or no method) where the environment's sidecars are not ours.
   */
  metrics?(w: WorkloadSlot): Endpoint | undefined;
  /** Where the environment runs the metrics scraper, if it runs one: its SVID and its own listener. */
  scraper?(): { svid: SvidLocation; listen: Endpoint } | undefined;
  /**
   * The sidecar's telemetry egress listener (ADR 0023), asked only when the model declares tracing;
   * undefined (or no method) where the environment's sidecars are not ours or there is no app.
   */
  telemetryEgress?(w: WorkloadSlot): Endpoint | undefined;
  /** Where the environment runs the trace collector and Jaeger, if it runs them. */
  tracing?(): TracingPlacement | undefined;
  dataEgress(
    w: WorkloadSlot,
    service: DataService,
    call: CallSlot,
  ): { listen?: Endpoint; upstream: Endpoint };
  /** The caller's sidecar listener for a peer call; undefined where the app has none. */
  peerListen(w: WorkloadSlot, call: CallSlot): Endpoint | undefined;
  svid(w: WorkloadSlot): SvidLocation;
  proxyDir(w: WorkloadSlot): string | undefined;
  /** Where `w` reaches the environment's loopback servers, when not on loopback itself. */
  hostAddress?(w: WorkloadSlot): string | undefined;
  /** Where the environment's public TLS listener in front of the edge workload `edge` binds. */
  edgeListen?(edge: string): Endpoint | undefined;
  /** The environment's own listeners (servers, proxies), which no workload listener may take. */
  reserved(): Listener[];
  /** The data services' own endpoints. */
  dataServices(): Partial<Record<DataService, Endpoint>>;
}

/** A thing the environment cannot place, at a model (or `environment.`) path. */
export class AllocationError extends Error {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

const wildcard = new Set(['0.0.0.0', '::', '[::]']);

function overlaps(a: Endpoint, b: Endpoint): boolean {
  return (
    a.port === b.port &&
    (a.address === b.address || wildcard.has(a.address) || wildcard.has(b.address))
  );
}

/**
 * Two listeners on the same port of one network (same address, or either a wildcard): one error
 * per listener that comes second, naming the first.
 */
export function collisions(listeners: readonly Listener[]): PolicyError[] {
  const errors: PolicyError[] = [];
  const seen = new Map<string, Listener[]>();
  for (const l of listeners) {
    const key = `${l.network}\u0000${l.endpoint.port}`;
    const same = seen.get(key) ?? [];
    const first = same.find((o) => overlaps(o.endpoint, l.endpoint));
    if (first)
      errors.push({
        path: l.path,
        reason: `${l.what} ${l.endpoint.address}:${l.endpoint.port} is taken by ${first.what} (${first.path}) in network ${l.network}`,
      });
    seen.set(key, [...same, l]);
  }
  return errors;
}
