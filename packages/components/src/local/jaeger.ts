import * as pulumi from '@pulumi/pulumi';
import { join } from 'node:path';
import { svidFiles } from '@trellis/contracts';
import { jaeger } from '@trellis/local/toolchain';
import { compileJaegerConfig, jaegerServerName, type BoundModel } from '@trellis/policy';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';

/** Inputs of a {@link LocalJaeger}. */
export interface LocalJaegerArgs {
  /** The bound model: Jaeger's identity and listeners (`binding.tracing.jaeger`). */
  model: BoundModel;
  /** Issues Jaeger's SVID. */
  ca: LocalMeshCa;
  /** The process dir: `config.yaml`, the log. Traces are kept in memory only. */
  dir: string;
  /** SVID lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the SVID now. @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 60_000 */
  readyTimeoutMs?: number;
}

const defaults = { certValidHours: 24, readyTimeoutMs: 60_000 };

/** Jaeger's config file (JSON is YAML), reading its SVID where the binding puts it (pure). */
export function jaegerConfig(model: BoundModel): string {
  const j = model.binding.tracing?.jaeger;
  if (j?.svid.kind !== 'files')
    throw new Error(
      'model.binding.tracing.jaeger must place Jaeger (declare tracing.collector in the model, and bind it to a local environment)',
    );
  const config = compileJaegerConfig(model, {
    otlpGrpcPort: j.otlp.port,
    queryHttpPort: j.query.port,
    queryGrpcPort: j.queryGrpc.port,
    pem: {
      cert: join(j.svid.dir, svidFiles.cert),
      key: join(j.svid.dir, svidFiles.key),
      ca: join(j.svid.dir, svidFiles.bundle),
    },
  });
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * The stack's Jaeger (ADR 0023): its OTLP/gRPC receiver on the host's loopback requires a Mesh CA
 * client certificate (the collector's), and presents Jaeger's own SVID with the DNS name the
 * collector checks (`jaeger.<namespace>.svc`). Traces live in memory; the query API
 * (`/api/traces/<id>`, `/api/v3/traces/<id>`) listens on the host's loopback only.
 */
export class LocalJaeger extends pulumi.ComponentResource {
  /** `http://127.0.0.1:<port>`: the query API. */
  public readonly url: string;
  public readonly spiffeId: string;
  public readonly certificate: WorkloadCertificate;
  public readonly process: LocalProcess;

  constructor(name: string, args: LocalJaegerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Jaeger', name, {}, opts);
    const j = args.model.binding.tracing?.jaeger;
    let config: string;
    try {
      config = jaegerConfig(args.model);
    } catch (err) {
      throw new pulumi.ResourceError(`${name}: ${(err as Error).message}`, this);
    }
    if (j?.svid.kind !== 'files') throw new pulumi.ResourceError(`${name}: unreachable`, this);
    this.url = `http://${j.query.address}:${j.query.port}`;
    this.spiffeId = j.spiffeId;
    this.certificate = new WorkloadCertificate(
      `${name}-svid`,
      {
        ca: args.ca,
        spiffeId: j.spiffeId,
        dns: [jaegerServerName(args.model)],
        dir: j.svid.dir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
      },
      { parent: this },
    );
    this.process = new LocalProcess(
      `${name}-process`,
      {
        dir: args.dir,
        command: pulumi.output(jaeger.ensure()),
        args: ['--config', join(args.dir, 'config.yaml')],
        env: {},
        files: { 'config.yaml': config },
        ready: { kind: 'http', url: `${this.url}/api/services`, status: 200 },
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 10_000,
      },
      { parent: this, dependsOn: [this.certificate] },
    );
    this.registerOutputs({ url: this.url, spiffeId: this.spiffeId });
  }
}
