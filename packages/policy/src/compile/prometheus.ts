/**
 * Prometheus scrape configuration from the model (ADR 0020): the metrics scraper reads every
 * sidecar's Envoy statistics and each declared app metrics path through the sidecar's metrics
 * listener, over mTLS with its own SVID. Nothing is scraped in plaintext.
 *
 * One job per workload and source (`envoy-<workload>`, `app-<workload>`), because `server_name` is
 * per scrape config and each sidecar's certificate names its own workload (`metricsServerName`):
 * Prometheus checks a target's certificate against the trust bundle and that DNS name, and the
 * sidecar checks Prometheus's SPIFFE ID. Field names: Prometheus 2.42 `scrape_config` and
 * `tls_config` (https://prometheus.io/docs/prometheus/2.42/configuration/configuration/).
 */
import type { BoundModel, Endpoint } from '../bind/types.ts';
import {
  metricsServerName,
  metricsServers,
  sidecarStatsPath,
  type DataService,
  type MetricsServer,
} from '../identity.ts';
import { dataMetricsPath, dataMetricsServerName } from './envoy/data-metrics.ts';

/** `tls_config` of a scrape config. */
export interface PrometheusTlsConfig {
  ca_file: string;
  cert_file: string;
  key_file: string;
  server_name: string;
  /** Go's default minimum is TLS 1.2 too; written out so that nobody lowers it unseen. */
  min_version: 'TLS12' | 'TLS13';
}

/** One `scrape_config`. */
export interface PrometheusScrapeConfig {
  job_name: string;
  scheme: 'http' | 'https';
  metrics_path: string;
  tls_config?: PrometheusTlsConfig;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
}

/** The `global` and `scrape_configs` parts of `prometheus.yml`. */
export interface PrometheusScrapeFile {
  global: { scrape_interval: string; scrape_timeout: string; evaluation_interval: string };
  scrape_configs: PrometheusScrapeConfig[];
}

/** Options of {@link compilePrometheusScrape}. */
export interface PrometheusScrapeOptions {
  /** @default '15s' (Prometheus's own default is 1m) */
  scrapeInterval?: string;
  /** At most the interval (Prometheus refuses more). @default '10s', or the interval when one is given */
  scrapeTimeout?: string;
  /**
   * The scraper's certificate files. @default the binding's (`binding.metrics.svid`, which must be
   * files)
   */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** Each workload's metrics listener as dialled. @default `binding.workloads.<w>.metrics` */
  targets?: Record<string, Endpoint>;
  /** Scrape Prometheus's own `/metrics` (plaintext on its loopback listener). @default true when bound */
  self?: boolean;
  /**
   * Each server's metrics front (`compileDataMetricsProxy`: mTLS, the scraper only) as dialled:
   * one job each, `jmx-<service>` reading a data node's JMX exporter, `keycloak` reading Keycloak's
   * management interface, `nginx` reading the ingress nginx's connection gauges. @default none (the local binding does not place the fronts)
   */
  dataTargets?: Partial<Record<MetricsServer, Endpoint>>;
}

/** The job names of a workload's scrape configs. */
export const scrapeJobs = {
  envoy: (workload: string) => `envoy-${workload}`,
  app: (workload: string) => `app-${workload}`,
  self: 'prometheus',
  jmx: (service: DataService) => `jmx-${service}`,
  keycloak: 'keycloak',
  nginx: 'nginx',
  /** The job of a server's metrics front. */
  server: (server: MetricsServer) =>
    server === 'keycloak' || server === 'nginx' ? server : scrapeJobs.jmx(server),
} as const;

const hostPort = (e: Endpoint) =>
  `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;

/**
 * The scrape configuration of the model's metrics scraper in the environment `model` is bound to.
 * Throws, naming the field, when the model has no scraper or the binding lacks what a job needs.
 */
export function compilePrometheusScrape(
  model: BoundModel,
  opts: PrometheusScrapeOptions = {},
): PrometheusScrapeFile {
  const m = model.binding.metrics;
  if (m === undefined)
    throw new Error('metrics.scraper: the model declares no metrics scraper to compile for');
  let tls = opts.tls;
  if (tls === undefined) {
    if (m.svid?.kind !== 'files')
      throw new Error(
        `metrics.scraper: the ${model.binding.environment} environment gives the scraper no SVID files`,
      );
    tls = { caFile: m.svid.bundle, certFile: m.svid.cert, keyFile: m.svid.key };
  }
  const t = tls;
  const jobs: PrometheusScrapeConfig[] = [];
  for (const w of Object.keys(model.workloads).sort()) {
    const at = opts.targets?.[w] ?? model.binding.workloads[w]?.metrics;
    if (at === undefined)
      throw new Error(
        `workloads.${w}: no metrics listener in the ${model.binding.environment} binding`,
      );
    const tlsConfig: PrometheusTlsConfig = {
      ca_file: t.caFile,
      cert_file: t.certFile,
      key_file: t.keyFile,
      server_name: metricsServerName(model, w),
      min_version: 'TLS12',
    };
    const job = (name: string, path: string): PrometheusScrapeConfig => ({
      job_name: name,
      scheme: 'https',
      metrics_path: path,
      tls_config: tlsConfig,
      static_configs: [{ targets: [hostPort(at)], labels: { workload: w } }],
    });
    jobs.push(job(scrapeJobs.envoy(w), sidecarStatsPath));
    const app = model.workloads[w]?.metrics;
    if (app !== undefined) jobs.push(job(scrapeJobs.app(w), app.path));
  }
  for (const service of metricsServers) {
    const at = opts.dataTargets?.[service];
    if (at === undefined) continue;
    jobs.push({
      job_name: scrapeJobs.server(service),
      scheme: 'https',
      metrics_path: dataMetricsPath,
      tls_config: {
        ca_file: t.caFile,
        cert_file: t.certFile,
        key_file: t.keyFile,
        server_name: dataMetricsServerName(model, service),
        min_version: 'TLS12',
      },
      static_configs: [{ targets: [hostPort(at)], labels: { service } }],
    });
  }
  if ((opts.self ?? true) && m.listen !== undefined)
    jobs.push({
      job_name: scrapeJobs.self,
      scheme: 'http',
      metrics_path: '/metrics',
      static_configs: [{ targets: [hostPort(m.listen)] }],
    });
  return {
    global: {
      scrape_interval: opts.scrapeInterval ?? '15s',
      scrape_timeout: opts.scrapeTimeout ?? opts.scrapeInterval ?? '10s',
      evaluation_interval: opts.scrapeInterval ?? '15s',
    },
    scrape_configs: jobs,
  };
}
