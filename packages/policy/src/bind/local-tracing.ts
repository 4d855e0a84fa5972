/**
 * The trace pipeline of a local stack (ADR 0023): the collector (its mTLS front, its receiver, the
 * front's admin) and Jaeger (OTLP receiver, query API, query gRPC), all on the host's loopback at
 * fixed offsets (`localPortOffsets` 420-425), each with its SVID directory under `pki/`.
 */
import type { Listener } from './allocator.ts';
import type { Endpoint, SvidLocation, TracingPlacement } from './types.ts';

/** The local stack's trace collector (and its front): `pki/<name>`, `run/<name>`. */
export const localCollectorName = 'otel-collector';
/** The local stack's Jaeger: its service account, `pki/<name>`, `run/<name>`. */
export const localJaegerName = 'jaeger';

/** The pipeline's fixed ports, by their `localPortOffsets` names. */
export const localTracingPorts = [
  'traceCollector',
  'traceCollectorReceiver',
  'traceCollectorAdmin',
  'jaegerOtlp',
  'jaegerQuery',
  'jaegerQueryGrpc',
] as const;

type TracingPorts = Record<(typeof localTracingPorts)[number], number>;

/** Where the pipeline runs, given the stack's ports and where an identity's SVID files are. */
export function localTracing(
  ports: TracingPorts,
  svidOf: (identity: string) => SvidLocation,
): TracingPlacement {
  const at = (port: number): Endpoint => ({ address: '127.0.0.1', port });
  return {
    collector: {
      svid: svidOf(localCollectorName),
      front: at(ports.traceCollector),
      receiver: at(ports.traceCollectorReceiver),
      admin: at(ports.traceCollectorAdmin),
    },
    jaeger: {
      serviceAccount: localJaegerName,
      svid: svidOf(localJaegerName),
      otlp: at(ports.jaegerOtlp),
      query: at(ports.jaegerQuery),
      queryGrpc: at(ports.jaegerQueryGrpc),
    },
  };
}

/** The pipeline's listeners, reserved so that no workload's port collides with them. */
export function localTracingListeners(ports: TracingPorts): Listener[] {
  return localTracingPorts.map((name) => ({
    network: 'loopback',
    endpoint: { address: '127.0.0.1', port: ports[name] },
    path: `environment.ports.${name}`,
    what: `the stack's ${name} listener`,
  }));
}
