/**
 * The stack's trace pipeline (ADR 0023): Jaeger (in-memory store, query API on the host's loopback)
 * and the OpenTelemetry Collector in front of it, with its mTLS front that every sidecar, and every
 * app through its sidecar's telemetry egress, exports spans to. Both run on the host; the pods reach
 * the front at the host's end of their link, through the pod relay (`hostRelayPorts`). It starts
 * beside the mesh: a sidecar whose export finds no collector yet drops those spans and carries on.
 */
import type * as pulumi from '@pulumi/pulumi';
import { LocalJaeger } from '@trellis/components/local/jaeger';
import { LocalOtelCollector } from '@trellis/components/local/otel-collector';
import { localCollectorName, localJaegerName, type EnvoyEndpoint } from '@trellis/policy';
import type { StackContext } from './context.ts';

/** What {@link deployTracing} returns: the stack output `tracing`. */
export interface TracingLayer {
  /** `http://127.0.0.1:<basePort + 424>`: Jaeger's query API (`/api/traces/<id>`, `/api/v3/traces/<id>`). */
  jaegerUrl: string;
  /** The collector's SPIFFE ID and its mTLS front (what the sidecars dial). */
  collector: { spiffeId: string; front: EnvoyEndpoint };
  /** Jaeger's SPIFFE ID. */
  jaegerSpiffeId: string;
  /** Wait for these before starting anything that exports spans. */
  resources: pulumi.Resource[];
}

/** Jaeger and the collector, or undefined when the model declares no `tracing`. */
export function deployTracing(
  ctx: StackContext,
  opts?: pulumi.ComponentResourceOptions,
): TracingLayer | undefined {
  if (ctx.model.binding.tracing?.collector === undefined) return undefined;
  const jaeger = new LocalJaeger(
    localJaegerName,
    {
      model: ctx.model,
      ca: ctx.ca,
      dir: ctx.runDir(localJaegerName),
      certValidHours: ctx.certValidHours,
      rotation: ctx.rotation,
    },
    opts,
  );
  const collector = new LocalOtelCollector(
    localCollectorName,
    {
      model: ctx.model,
      ca: ctx.ca,
      dir: ctx.runDir(localCollectorName),
      certValidHours: ctx.certValidHours,
      rotation: ctx.rotation,
    },
    { ...opts, dependsOn: [jaeger] },
  );
  return {
    jaegerUrl: jaeger.url,
    collector: { spiffeId: collector.spiffeId, front: collector.front },
    jaegerSpiffeId: jaeger.spiffeId,
    resources: [jaeger, collector],
  };
}
