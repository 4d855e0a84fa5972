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
  type MetricsServer,
} from '@trellis/policy';
import type { StackContext } from './context.ts';

/** Where one server's metrics are: its agent (or Keycloak's management port), its front, its admin. */
export interface DataMetricsPlan {
  service: MetricsServer;
  /** The front's mTLS listener: the node's pod address (or 127.0.0.1 without pods). */
  listen: EnvoyEndpoint;
  /** The front's Envoy admin, on the node's own loopback. */
  adminPort: number;
  /**
   * The JMX exporter agent (Keycloak: its management interface; nginx: its metrics server), on the
   * server's own loopback.
   */
  exporterPort: number;
}

/**
 * Where Keycloak's metrics front goes (ADR 0024): `serverMetricsFrom`/`serverMetricsAdminFrom` plus
 * Keycloak's slot (2), on Keycloak's pod address when it has one, reading the management interface
 * (`keycloakManagement`) on Keycloak's own loopback; undefined without a metrics scraper.
 */
export function planKeycloakMetrics(
  model: BoundModel,
  ports: Record<LocalPortName, number>,
  podAddress?: string,
): DataMetricsPlan | undefined {
  if (model.binding.metrics === undefined) return undefined;
  const slot = localServerMetricsSlots.keycloak;
  return {
    service: 'keycloak',
    listen: { address: podAddress ?? '127.0.0.1', port: ports.serverMetricsFrom + slot },
    adminPort: ports.serverMetricsAdminFrom + slot,
    exporterPort: ports.keycloakManagement,
  };
}

/**
 * Where nginx's metrics go (issue 15): nginx renders its stub_status gauges on the edge pod's own
 * loopback at `jmxExporterFrom` + nginx's slot (3), and a front in the same pod
 * (`serverMetricsFrom`/`serverMetricsAdminFrom` + 3), on the edge pod's address when the edge is a
 * pod, is the scraper's only way in; undefined without a metrics scraper.
 */
export function planNginxMetrics(
  model: BoundModel,
  ports: Record<LocalPortName, number>,
  podAddress?: string,
): DataMetricsPlan | undefined {
  if (model.binding.metrics === undefined) return undefined;
  const slot = localServerMetricsSlots.nginx;
  return {
    service: 'nginx',
    listen: { address: podAddress ?? '127.0.0.1', port: ports.serverMetricsFrom + slot },
    adminPort: ports.serverMetricsAdminFrom + slot,
    exporterPort: ports.jmxExporterFrom + slot,
  };
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
  pods: Partial<Record<MetricsServer, ServerPod>>,
  opts?: pulumi.ComponentResourceOptions,
): { fronts: LocalDataMetricsFront[]; targets: Partial<Record<MetricsServer, EnvoyEndpoint>> } {
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
