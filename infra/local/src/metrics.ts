/**
 * The stack's Prometheus (ADR 0020): the model's metrics scraper, with its own SVID, scraping every
 * sidecar's metrics listener over mTLS (Envoy's stats and the apps' declared `/metrics`), with the
 * SLO rules compiled from the route budgets. It runs on the host; its UI and API listen on the host's
 * loopback (`binding.metrics.listen`). Call it last: `deployMetrics(ctx, mesh, data)` scrapes the
 * sidecars `deployMesh` started, the data nodes' metrics fronts `deployData` started and, given
 * `settings.identity`, Keycloak's metrics front `deployIdentity` started; nginx's metrics front `deployMesh` started is scraped as job `nginx`.
 */
import type * as pulumi from '@pulumi/pulumi';
import { LocalPrometheus } from '@trellis/components/local/prometheus';
import { localScraperName } from '@trellis/policy';
import type { StackContext } from './context.ts';
import type { DataLayer } from './data.ts';
import type { IdentityLayer } from './identity.ts';
import type { MeshLayer } from './mesh.ts';

/** What {@link deployMetrics} returns: the stack output `prometheus`. */
export interface MetricsLayer {
  /** `http://127.0.0.1:<basePort + 90>`: the UI, `/api/v1/targets`, `/consoles/`. */
  url: string;
  /** The dashboards compiled from the model: `<url>/consoles/index.html` (ADR 0024). */
  consolesUrl: string;
  spiffeId: string;
  /**
   * The scrape jobs: `envoy-<workload>`, `app-<workload>`, `jmx-<service>`, `keycloak`, `nginx`,
   * `prometheus`.
   */
  jobs: string[];
  prometheus: LocalPrometheus;
}

/**
 * Prometheus for the stack, or undefined when the model declares no metrics scraper (then nothing
 * scrapes, and no sidecar has a metrics listener).
 */
export function deployMetrics(
  ctx: StackContext,
  mesh: MeshLayer,
  data: Pick<DataLayer, 'metrics'>,
  opts?: pulumi.ComponentResourceOptions,
  settings: {
    scrapeInterval?: string;
    sloTimeScale?: number;
    sloEnvironment?: string;
    /** Keycloak's metrics front (job `keycloak`; ADR 0024). @default not scraped */
    identity?: Pick<IdentityLayer, 'metrics'>;
  } = {},
): MetricsLayer | undefined {
  if (ctx.model.binding.metrics === undefined) return undefined;
  const kc = settings.identity?.metrics;
  const prometheus = new LocalPrometheus(
    'prometheus',
    {
      model: ctx.model,
      ca: ctx.ca,
      dir: ctx.runDir(localScraperName),
      certValidHours: ctx.certValidHours,
      rotation: ctx.rotation,
      dataTargets: {
        ...data.metrics.targets,
        ...(kc !== undefined ? { keycloak: kc.target } : {}),
        ...(mesh.metrics !== undefined ? { nginx: mesh.metrics.target } : {}),
      },
      ...(settings.scrapeInterval !== undefined ? { scrapeInterval: settings.scrapeInterval } : {}),
      ...(settings.sloTimeScale !== undefined ? { sloTimeScale: settings.sloTimeScale } : {}),
      ...(settings.sloEnvironment !== undefined ? { sloEnvironment: settings.sloEnvironment } : {}),
    },
    // Its first scrape finds every sidecar up.
    {
      ...opts,
      dependsOn: [
        ...mesh.resources,
        ...data.metrics.fronts,
        ...(kc !== undefined ? [kc.front] : []),
        ...(mesh.metrics !== undefined ? [mesh.metrics.front] : []),
      ],
    },
  );
  return {
    url: prometheus.url,
    consolesUrl: prometheus.consolesUrl,
    spiffeId: prometheus.spiffeId,
    jobs: prometheus.jobs,
    prometheus,
  };
}
