/** The peer-port rule: which port of a workload its callers reach. Its one definition. */
import { own } from '../identity.ts';
import type { Model, PortSpec } from '../schema.ts';

/**
 * The port of `target` that its callers reach: the one its routes use (validation keeps a backend's
 * routes on one port), else its first port. Undefined for a workload without ports.
 */
export function peerPort(model: Model, target: string): PortSpec | undefined {
  const ports = own(model.workloads, target)?.ports ?? [];
  const routed = Object.values(model.routes).find((r) => r.backend === target)?.port;
  return ports.find((p) => p.name === routed) ?? ports[0];
}
