import * as pulumi from '@pulumi/pulumi';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sidecarFiles, svidFiles } from '@trellis/contracts';
import { envoyArgs, validateEnvoyConfig } from '@trellis/local/harness';
import { envoy, otelcol } from '@trellis/local/toolchain';
import {
  collectorServerName,
  compileCollectorFront,
  compileOtelCollectorConfig,
  type BoundModel,
  type EnvoyArtefacts,
  type EnvoyEndpoint,
  type TracingPlacement,
} from '@trellis/policy';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';
import { relativeSdsFiles, type SvidFiles } from './sidecar.ts';

/** Inputs of a {@link LocalOtelCollector}. */
export interface LocalOtelCollectorArgs {
  /**
   * The bound model: the collector's SPIFFE ID and placement (`binding.tracing.collector`), the
   * workloads its front admits, and Jaeger's OTLP receiver (`binding.tracing.jaeger.otlp`).
   */
  model: BoundModel;
  /** Issues the collector's SVID. */
  ca: LocalMeshCa;
  /** The component's dir: `collector/` (config, log) and `front/` (Envoy's bootstrap, SDS, log). */
  dir: string;
  /** SVID lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the SVID now (rotated in place). @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 60_000 */
  readyTimeoutMs?: number;
}

const defaults = { certValidHours: 24, readyTimeoutMs: 60_000 };

/** The collector's placement from the binding, or an error naming what is missing. */
export function collectorPlacement(model: BoundModel): {
  collector: TracingPlacement['collector'];
  /** The directory of the collector's SVID files. */
  svidDir: string;
  jaeger: EnvoyEndpoint;
  spiffeId: string;
} {
  const t = model.binding.tracing;
  if (t?.collector?.svid.kind !== 'files' || t.jaeger === undefined)
    throw new Error(
      'model.binding.tracing must place the collector and Jaeger (declare tracing.collector in the model, and bind it to a local environment)',
    );
  return {
    collector: t.collector,
    svidDir: t.collector.svid.dir,
    jaeger: t.jaeger.otlp,
    spiffeId: t.spiffeId,
  };
}

const pemOf = (d: string): SvidFiles => ({
  cert: join(d, svidFiles.cert),
  key: join(d, svidFiles.key),
  bundle: join(d, svidFiles.bundle),
});

/** The front's bootstrap and SDS files, in `dir`, with the SVID `svid` (pure). */
export function collectorFrontArtefacts(
  model: BoundModel,
  dir: string,
  svid: SvidFiles,
): EnvoyArtefacts {
  const { collector } = collectorPlacement(model);
  return compileCollectorFront(model, {
    listen: collector.front,
    receiverPort: collector.receiver.port,
    adminPort: collector.admin.port,
    sds: {
      dir: join(dir, sidecarFiles.sdsDir),
      certChain: svid.cert,
      privateKey: svid.key,
      trustBundle: svid.bundle,
    },
  });
}

/** The collector's config file (JSON is YAML) with the SVID `svid` (pure). */
export function collectorConfig(model: BoundModel, svid: SvidFiles): string {
  const { collector, jaeger } = collectorPlacement(model);
  const config = compileOtelCollectorConfig(model, {
    receiverPort: collector.receiver.port,
    jaeger,
    pem: { cert: svid.cert, key: svid.key, ca: svid.bundle },
  });
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * The stack's OpenTelemetry Collector (ADR 0023): the model's trace collector, with an SVID of its
 * own from the Mesh CA. Its OTLP/HTTP receiver listens on the host's loopback with TLS that requires
 * a Mesh CA client certificate; in front of it, an Envoy (`compileCollectorFront`) admits the
 * model's workloads by SPIFFE ID, `POST /v1/traces` only, and re-originates mTLS to the receiver with
 * the collector's SVID. The collector batches and exports to Jaeger over mTLS (OTLP/gRPC). The
 * front's bootstrap is checked with `envoy --mode validate` before anything starts.
 */
export class LocalOtelCollector extends pulumi.ComponentResource {
  public readonly spiffeId: string;
  /** Where the sidecars send spans: the front's mTLS listener on the host's loopback. */
  public readonly front: EnvoyEndpoint;
  /** The DNS name the collector's SVID carries beside its SPIFFE ID. */
  public readonly serverName: string;
  public readonly certificate: WorkloadCertificate;
  public readonly collector: LocalProcess;
  public readonly frontEnvoy: LocalProcess;

  constructor(name: string, args: LocalOtelCollectorArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:OtelCollector', name, {}, opts);
    let placement: ReturnType<typeof collectorPlacement>;
    const collectorDir = join(args.dir, 'collector');
    const frontDir = join(args.dir, 'front');
    try {
      placement = collectorPlacement(args.model);
      const svid = pemOf(placement.svidDir);
      collectorConfig(args.model, svid);
      collectorFrontArtefacts(args.model, frontDir, svid);
    } catch (err) {
      throw new pulumi.ResourceError(`${name}: ${(err as Error).message}`, this);
    }
    const { collector } = placement;
    this.spiffeId = placement.spiffeId;
    this.front = { ...collector.front };
    this.serverName = collectorServerName(args.model) ?? '';

    this.certificate = new WorkloadCertificate(
      `${name}-svid`,
      {
        ca: args.ca,
        spiffeId: this.spiffeId,
        dns: [this.serverName],
        dir: placement.svidDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
      },
      { parent: this },
    );
    const svid = pemOf(placement.svidDir);
    const readyTimeoutMs = args.readyTimeoutMs ?? defaults.readyTimeoutMs;

    // Paths only: a rotated SVID changes no input (the collector re-reads its files, Envoy watches them).
    this.collector = new LocalProcess(
      `${name}-process`,
      {
        dir: collectorDir,
        command: pulumi.output(otelcol.ensure()),
        args: ['--config', join(collectorDir, 'config.yaml')],
        env: {},
        files: { 'config.yaml': collectorConfig(args.model, svid) },
        ready: { kind: 'tcp', host: collector.receiver.address, port: collector.receiver.port },
        readyTimeoutMs,
        stopGraceMs: 10_000,
      },
      { parent: this, dependsOn: [this.certificate] },
    );

    const files = this.certificate.files.apply(async () => {
      const error = await validateFront(args.model);
      if (error !== null)
        throw new pulumi.ResourceError(
          `${name}: envoy --mode validate refused the collector's front:\n${error}`,
          this,
          true,
        );
      const a = collectorFrontArtefacts(args.model, frontDir, svid);
      return {
        [sidecarFiles.bootstrap]: `${JSON.stringify(a.bootstrap, null, 2)}\n`,
        ...relativeSdsFiles(a, frontDir),
      };
    });
    this.frontEnvoy = new LocalProcess(
      `${name}-front`,
      {
        dir: frontDir,
        command: pulumi.output(envoy.ensure()),
        args: envoyArgs({ configPath: join(frontDir, sidecarFiles.bootstrap) }),
        env: {},
        files,
        ready: { kind: 'http', url: `http://127.0.0.1:${collector.admin.port}/ready`, status: 200 },
        readyTimeoutMs,
        stopGraceMs: 5_000,
      },
      { parent: this, dependsOn: [this.certificate, this.collector] },
    );
    this.registerOutputs({ spiffeId: this.spiffeId, front: this.front });
  }
}

/** `envoy --mode validate` on the front compiled into a scratch dir; null when Envoy accepts it. */
async function validateFront(model: BoundModel): Promise<string | null> {
  const scratch = mkdtempSync(join(tmpdir(), 'trellis-collector-front-check-'));
  try {
    const pki = join(scratch, 'pki');
    mkdirSync(pki);
    mkdirSync(join(scratch, sidecarFiles.sdsDir));
    const a = collectorFrontArtefacts(model, scratch, pemOf(pki));
    for (const [rel, text] of Object.entries(relativeSdsFiles(a, scratch)))
      writeFileSync(join(scratch, rel), text);
    const check = await validateEnvoyConfig(a.bootstrap as unknown as Record<string, unknown>);
    return check.ok ? null : check.error;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
