import * as pulumi from '@pulumi/pulumi';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sidecarFiles, svidFiles } from '@trellis/contracts';
import { envoyArgs, validateEnvoyConfig } from '@trellis/local/harness';
import { envoy } from '@trellis/local/toolchain';
import {
  compileDataMetricsProxy,
  dataMetricsServerName,
  metricsServerSpiffeId,
  type BoundModel,
  type MetricsServer,
  type EnvoyArtefacts,
  type EnvoyEndpoint,
} from '@trellis/policy';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';
import { serverPlacement, type ServerPod } from './server-pod.ts';
import { relativeSdsFiles, type SvidFiles } from './sidecar.ts';

/** Where one front listens and what it reads: the placement half of its compile options. */
export interface DataMetricsFrontPlacement {
  /** The mTLS listener: the server pod's address (or 127.0.0.1 without pods). */
  listen: EnvoyEndpoint;
  /** Envoy's admin port, on 127.0.0.1 (in a pod, the pod's own loopback). */
  adminPort: number;
  /**
   * The metrics source's port on the server's 127.0.0.1: a data node's JMX exporter agent, or
   * Keycloak's management interface (HTTPS; the front checks its certificate, ADR 0024).
   */
  exporterPort: number;
}

/**
 * The bootstrap and SDS files of the metrics front of `service` whose dir is `dir` and whose
 * certificate is `svid` (pure; `compileDataMetricsProxy`).
 */
export function dataMetricsFrontArtefacts(
  model: BoundModel,
  service: MetricsServer,
  p: DataMetricsFrontPlacement,
  dir: string,
  svid: SvidFiles,
): EnvoyArtefacts {
  return compileDataMetricsProxy(model, {
    service,
    listen: p.listen,
    exporterPort: p.exporterPort,
    adminPort: p.adminPort,
    sds: {
      dir: join(dir, sidecarFiles.sdsDir),
      certChain: svid.cert,
      privateKey: svid.key,
      trustBundle: svid.bundle,
    },
  });
}

/** Inputs of a {@link LocalDataMetricsFront}. */
export interface LocalDataMetricsFrontArgs extends DataMetricsFrontPlacement {
  /** The bound model: the scraper's SPIFFE ID (the only client admitted) and the namespace. */
  model: BoundModel;
  /** The server this fronts: a data node, or Keycloak. */
  service: MetricsServer;
  /** Issues the front's certificate: the service's SPIFFE ID and the DNS name Prometheus checks. */
  ca: LocalMeshCa;
  /** Directory of the certificate files, rotated in place (Envoy watches it). */
  certDir: string;
  /** The Envoy's directory: bootstrap, SDS files, log (a LocalProcess dir). */
  dir: string;
  /** Run Envoy in the node's pod, as its user (ADR 0012). @default on the host */
  pod?: ServerPod;
  /** Certificate lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the certificate now (rotated without a restart). @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 60_000 */
  readyTimeoutMs?: number;
}

const defaults = { certValidHours: 24, readyTimeoutMs: 60_000 };

/**
 * The mTLS front of a server's metrics (ADR 0020: a data node's JMX exporter; ADR 0024: Keycloak's
 * management interface): an Envoy in the server's pod with one listener that admits only the
 * model's metrics scraper, `GET /metrics` only, routed to the metrics on the pod's own loopback. It presents a certificate of the service's SPIFFE ID with the DNS name
 * `<service>.<namespace>.svc`, which Prometheus checks (`server_name`). The bootstrap is checked
 * with `envoy --mode validate` before anything starts.
 */
export class LocalDataMetricsFront extends pulumi.ComponentResource {
  public readonly service: MetricsServer;
  /** `host:port` Prometheus scrapes. */
  public readonly target: EnvoyEndpoint;
  /** The DNS name the front's certificate carries. */
  public readonly serverName: string;
  public readonly certificate: WorkloadCertificate;
  public readonly envoy: LocalProcess;

  constructor(
    name: string,
    args: LocalDataMetricsFrontArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('trellis:local:DataMetricsFront', name, {}, opts);
    for (const [field, v] of [
      ['listen.port', args.listen.port],
      ['adminPort', args.adminPort],
      ['exporterPort', args.exporterPort],
    ] as const)
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ${field} must be a TCP port, got ${v}`, this);
    if (args.adminPort === args.exporterPort)
      throw new pulumi.ResourceError(
        `${name}: adminPort and exporterPort are both ${args.adminPort} on the node's loopback`,
        this,
      );
    const { owner } = serverPlacement(name, args.dir, args.pod, this);
    const placement: DataMetricsFrontPlacement = {
      listen: args.listen,
      adminPort: args.adminPort,
      exporterPort: args.exporterPort,
    };
    const svidAt = (d: string): SvidFiles => ({
      cert: join(d, svidFiles.cert),
      key: join(d, svidFiles.key),
      bundle: join(d, svidFiles.bundle),
    });
    // Compile now, so that a model without a scraper fails here, naming the field.
    try {
      dataMetricsFrontArtefacts(
        args.model,
        args.service,
        placement,
        args.dir,
        svidAt(args.certDir),
      );
    } catch (err) {
      throw new pulumi.ResourceError(`${name}: ${(err as Error).message}`, this);
    }
    this.service = args.service;
    this.target = { ...args.listen };
    this.serverName = dataMetricsServerName(args.model, args.service);

    this.certificate = new WorkloadCertificate(
      `${name}-cert`,
      {
        ca: args.ca,
        spiffeId: metricsServerSpiffeId(args.model, args.service),
        dns: [this.serverName],
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        ...(owner !== undefined ? { owner } : {}),
      },
      { parent: this },
    );

    // Only paths go into the process's inputs: a rotated certificate restarts nothing (SDS).
    const files = this.certificate.files.apply(async (f) => {
      const error = await validateFront(args.model, args.service, placement);
      if (error !== null)
        throw new pulumi.ResourceError(
          `${name}: envoy --mode validate refused the metrics front of ${args.service}:\n${error}`,
          this,
          true,
        );
      const a = dataMetricsFrontArtefacts(args.model, args.service, placement, args.dir, f);
      return {
        [sidecarFiles.bootstrap]: `${JSON.stringify(a.bootstrap, null, 2)}\n`,
        ...relativeSdsFiles(a, args.dir),
      };
    });
    const adminReady = `http://127.0.0.1:${args.adminPort}/ready`;
    this.envoy = new LocalProcess(
      `${name}-envoy`,
      {
        dir: args.dir,
        command: pulumi.output(envoy.ensure()),
        args: envoyArgs({ configPath: join(args.dir, sidecarFiles.bootstrap) }),
        env: {},
        files,
        ready:
          args.pod === undefined
            ? { kind: 'http', url: adminReady, status: 200 }
            : pulumi.output(args.pod.launch).apply((p) => ({
                kind: 'http' as const,
                url: adminReady,
                status: 200,
                netns: p.netns, // the admin listens on the pod's own loopback
              })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 5_000,
        ...(args.pod !== undefined ? { pod: args.pod.launch } : {}),
      },
      { parent: this, dependsOn: [this.certificate] },
    );
    this.registerOutputs({ target: this.target, serverName: this.serverName });
  }
}

/** `envoy --mode validate` on a front compiled into a scratch dir; null when Envoy accepts it. */
async function validateFront(
  model: BoundModel,
  service: MetricsServer,
  p: DataMetricsFrontPlacement,
): Promise<string | null> {
  const scratch = mkdtempSync(join(tmpdir(), 'trellis-metrics-front-check-'));
  try {
    const pki = join(scratch, 'pki');
    mkdirSync(pki);
    mkdirSync(join(scratch, sidecarFiles.sdsDir));
    const a = dataMetricsFrontArtefacts(model, service, p, scratch, {
      cert: join(pki, svidFiles.cert),
      key: join(pki, svidFiles.key),
      bundle: join(pki, svidFiles.bundle),
    });
    for (const [rel, text] of Object.entries(relativeSdsFiles(a, scratch)))
      writeFileSync(join(scratch, rel), text);
    const check = await validateEnvoyConfig(a.bootstrap as unknown as Record<string, unknown>);
    return check.ok ? null : check.error;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
