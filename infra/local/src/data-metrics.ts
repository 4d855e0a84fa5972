/**
 * The data nodes' metrics in the local stack (ADR 0020): each of Cassandra and Kafka runs the JMX
 * exporter agent on its own loopback, and an Envoy front in the same pod (compiled by
 * `compileDataMetricsProxy`) is the metrics scraper's only way in, over mTLS. This module says
 * where each goes (pure: {@link planDataMetrics}) and starts the fronts.
 */
import type * as pulumi from '@pulumi/pulumi';
import { LocalDataMetricsFront } from '@trellis/components/local/data-metrics';
import type { ServerPod } from '@trellis/components/local/server-pod';
import {
  localServerMetricsSlots,
  type BoundModel,
  type DataService,
  type EnvoyEndpoint,
  type LocalPortName,
} from '@trellis/policy';
import type { StackContext } from './context.ts';

/** Where one data node's metrics are: its agent, its front and the front's admin. */
export interface DataMetricsPlan {
  service: DataService;
  /** The front's mTLS listener: the node's pod address (or 127.0.0.1 without pods). */
  listen: EnvoyEndpoint;
  /** The front's Envoy admin, on the node's own loopback. */
  adminPort: number;
  /** The JMX exporter agent, on the node's own loopback. */
  exporterPort: number;
}

/**
 * Where the data nodes' metrics go at the stack's fixed ports (`jmxExporterFrom`,
 * `serverMetricsFrom`, `serverMetricsAdminFrom` plus the server's slot), the front on the node's
 * pod address when it has one (`servers`); empty when the model declares no metrics scraper.
 */
export function planDataMetrics(
  model: BoundModel,
  ports: Record<LocalPortName, number>,
  servers: Partial<Record<DataService, string>> = {},
): DataMetricsPlan[] {
  if (model.binding.metrics === undefined) return [];
  return (['cassandra', 'kafka'] as const).map((service) => {
    const slot = localServerMetricsSlots[service];
    return {
      service,
      listen: { address: servers[service] ?? '127.0.0.1', port: ports.serverMetricsFrom + slot },
      adminPort: ports.serverMetricsAdminFrom + slot,
      exporterPort: ports.jmxExporterFrom + slot,
    };
  });
}

/** The fronts of {@link planDataMetrics}, each in its node's pod (if any), and their targets. */
export function deployDataMetrics(
  ctx: StackContext,
  plan: readonly DataMetricsPlan[],
  pods: Partial<Record<DataService, ServerPod>>,
  opts?: pulumi.ComponentResourceOptions,
): { fronts: LocalDataMetricsFront[]; targets: Partial<Record<DataService, EnvoyEndpoint>> } {
  const fronts = plan.map((p) => {
    const pod = pods[p.service];
    return new LocalDataMetricsFront(
      `${p.service}-metrics`,
      {
        model: ctx.model,
        service: p.service,
        ca: ctx.ca,
        certDir: ctx.pkiDir(`${p.service}-metrics`),
        dir: ctx.runDir(`${p.service}-metrics`),
        listen: p.listen,
        adminPort: p.adminPort,
        exporterPort: p.exporterPort,
        certValidHours: ctx.certValidHours,
        rotation: ctx.rotation,
        ...(pod !== undefined ? { pod } : {}),
      },
      opts,
    );
  });
  return {
    fronts,
    targets: Object.fromEntries(fronts.map((f) => [f.service, f.target])),
  };
}
