import * as pulumi from '@pulumi/pulumi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prometheusArgs } from '@trellis/local/harness';
import { ensurePrometheus } from '@trellis/local/toolchain';
import {
  compileConsoles,
  compilePrometheusScrape,
  compileSloRules,
  consoleFiles,
  sloBucketsMs,
  sloTimeScaleProblem,
  type BoundModel,
  type MetricsServer,
  type EnvoyEndpoint,
  type PrometheusScrapeFile,
  type SloOptions,
} from '@trellis/policy';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';

/** Inputs of a {@link LocalPrometheus}. */
export interface LocalPrometheusArgs {
  /**
   * The bound model: its metrics scraper (`binding.metrics`: SPIFFE ID, SVID files, listener) and
   * every sidecar's metrics listener, which `compilePrometheusScrape` turns into scrape jobs.
   */
  model: BoundModel;
  /** Issues the scraper's SVID. */
  ca: LocalMeshCa;
  /** The process dir: `prometheus.yml`, `slo-rules.yaml`, the TSDB under `data/`, the log. */
  dir: string;
  /**
   * The data nodes' metrics fronts (ADR 0020; `LocalDataMetricsFront`): one scrape job each,
   * `jmx-<service>`, over mTLS. @default none
   */
  dataTargets?: Partial<Record<MetricsServer, EnvoyEndpoint>>;
  /** Scrape and rule evaluation interval. @default '15s' */
  scrapeInterval?: string;
  /**
   * Test stacks only (ADR 0025): divide every SLO window and `for` by this, so that a burn can fire
   * and clear within a test; it must divide 300 and leave the shortest window at least four scrape
   * intervals long (`sloTimeScaleProblem`). @default 1
   */
  sloTimeScale?: number;
  /**
   * Judge the routes by this environment of `budgets.environments` (e.g. `ci`), with the buckets
   * `sloBucketsMs` gives, which the edge sidecar must also use. @default production's budgets
   */
  sloEnvironment?: string;
  /** SVID lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the SVID now. @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 60_000 */
  readyTimeoutMs?: number;
}

const defaults = { scrapeInterval: '15s', certValidHours: 24, readyTimeoutMs: 60_000 };

/** Where an instance's compiled consoles and their libraries go, relative to its dir. */
export const consoleDirs = { templates: 'consoles', libraries: 'console_libraries' } as const;

/**
 * The files of one instance, relative to its dir: the scrape config, the SLO rules it loads, and
 * the consoles compiled from the model (`consoles/*.html`, `console_libraries/trellis.lib`; ADR
 * 0024). Debian's `prom.lib` joins the libraries at start (see {@link LocalPrometheus}).
 */
export function prometheusFiles(
  model: BoundModel,
  scrapeInterval: string,
  dataTargets: Partial<Record<MetricsServer, EnvoyEndpoint>> = {},
  sloTimeScale = 1,
  sloEnvironment?: string,
): {
  'prometheus.yml': string;
  'slo-rules.yaml': string;
  scrape: PrometheusScrapeFile;
  consoles: Record<string, string>;
} {
  const scrape = compilePrometheusScrape(model, { scrapeInterval, dataTargets });
  // JSON is YAML: Prometheus reads both files as written. Rule files resolve against the config's dir.
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  // The rules and the consoles read by the same options: the same windows, the same budgets.
  const slo: SloOptions = {
    ...(sloTimeScale === 1 ? {} : { timeScale: { factor: sloTimeScale, scrapeInterval } }),
    ...(sloEnvironment !== undefined
      ? {
          environment: sloEnvironment,
          metrics: { bucketsMs: sloBucketsMs(model, sloEnvironment) },
        }
      : {}),
  };
  const c = compileConsoles(model, scrape, { slo });
  return {
    scrape,
    'prometheus.yml': json({ ...scrape, rule_files: ['slo-rules.yaml'] }),
    'slo-rules.yaml': json(compileSloRules(model, slo)),
    consoles: {
      ...Object.fromEntries(
        Object.entries(c.consoles).map(([f, t]) => [`${consoleDirs.templates}/${f}`, t]),
      ),
      ...Object.fromEntries(
        Object.entries(c.libraries).map(([f, t]) => [`${consoleDirs.libraries}/${f}`, t]),
      ),
    },
  };
}

/**
 * The stack's Prometheus (ADR 0020): the model's metrics scraper, a workload of its own with an SVID
 * from the Mesh CA (the scraper's SPIFFE ID, rotated in place), scraping every sidecar's metrics
 * listener over mTLS, with the SLO rules compiled from the route budgets. Its own HTTP API and UI
 * listen on the host's loopback only (`binding.metrics.listen`).
 */
export class LocalPrometheus extends pulumi.ComponentResource {
  /** `http://127.0.0.1:<port>`: the UI, `/api/v1/targets`, `/consoles/…`. */
  public readonly url: string;
  /** The index of the consoles compiled from the model: `<url>/consoles/index.html`. */
  public readonly consolesUrl: string;
  public readonly spiffeId: string;
  /**
   * The scrape jobs, by name (a sidecar's Envoy stats, an app's metrics, a data node's JMX
   * exporter, Prometheus itself).
   */
  public readonly jobs: string[];
  public readonly certificate: WorkloadCertificate;
  public readonly process: LocalProcess;

  constructor(name: string, args: LocalPrometheusArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Prometheus', name, {}, opts);
    const m = args.model.binding.metrics;
    if (m?.svid?.kind !== 'files' || m.listen === undefined)
      throw new pulumi.ResourceError(
        `${name}: model.binding.metrics must give the scraper SVID files and a listener (declare metrics.scraper in the model, and bind it to a local environment)`,
        this,
      );
    const scrapeInterval = args.scrapeInterval ?? defaults.scrapeInterval;
    const sloTimeScale = args.sloTimeScale ?? 1;
    const problem = sloTimeScaleProblem({ factor: sloTimeScale, scrapeInterval });
    if (problem !== undefined)
      throw new pulumi.ResourceError(`${name}: sloTimeScale: ${problem}`, this);
    let files: ReturnType<typeof prometheusFiles>;
    try {
      files = prometheusFiles(
        args.model,
        scrapeInterval,
        args.dataTargets,
        sloTimeScale,
        args.sloEnvironment,
      );
    } catch (err) {
      throw new pulumi.ResourceError(`${name}: ${(err as Error).message}`, this);
    }
    this.url = `http://${m.listen.address}:${m.listen.port}`;
    this.consolesUrl = `${this.url}/consoles/${consoleFiles.index}`;
    this.spiffeId = m.spiffeId;
    this.jobs = files.scrape.scrape_configs.map((j) => j.job_name);

    this.certificate = new WorkloadCertificate(
      `${name}-svid`,
      {
        ca: args.ca,
        spiffeId: m.spiffeId,
        dir: m.svid.dir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
      },
      { parent: this },
    );

    const port = m.listen.port;
    const layout = pulumi.output(ensurePrometheus());
    const command = layout.apply((l) => ({
      bin: l.prometheus,
      args: [
        ...prometheusArgs(args.dir, port),
        // The consoles compiled from the model, with Debian's prom.lib copied beside ours.
        `--web.console.libraries=${join(args.dir, consoleDirs.libraries)}`,
        `--web.console.templates=${join(args.dir, consoleDirs.templates)}`,
        `--web.local-assets=${l.webAssets}`,
      ],
    }));
    this.process = new LocalProcess(
      `${name}-process`,
      {
        dir: args.dir,
        command: command.bin,
        args: command.args,
        env: {},
        // Paths only: a rotated SVID changes no input (Prometheus reads the files it names).
        files: layout.apply((l) => ({
          'prometheus.yml': files['prometheus.yml'],
          'slo-rules.yaml': files['slo-rules.yaml'],
          ...files.consoles,
          [`${consoleDirs.libraries}/prom.lib`]: readFileSync(
            join(l.consoleLibraries, 'prom.lib'),
            'utf8',
          ),
        })),
        ready: { kind: 'http', url: `${this.url}/-/ready`, status: 200 },
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 10_000,
      },
      { parent: this, dependsOn: [this.certificate] },
    );
    this.registerOutputs({
      url: this.url,
      consolesUrl: this.consolesUrl,
      spiffeId: this.spiffeId,
      jobs: this.jobs,
    });
  }
}
