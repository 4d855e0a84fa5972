import * as pulumi from '@pulumi/pulumi';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { identityHeaders, sidecarFiles, svidFiles } from '@trellis/contracts';
import { envoyArgs, validateEnvoyConfig } from '@trellis/local/harness';
import type { PodLaunch } from '@trellis/local/pods';
import { envoy } from '@trellis/local/toolchain';
import {
  compileEnvoy,
  metricsServerName,
  spiffeId,
  type EnvoyArtefacts,
  type EnvoyBootstrap,
  type EnvoyEndpoint,
  type EnvoyOptions,
  type BoundModel,
} from '@trellis/policy';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';
import { POD_WORK_DIR } from './process-impl.ts';

/** The certificate files a sidecar reads (a WorkloadCertificate's `files`). */
export interface SvidFiles {
  cert: string;
  key: string;
  bundle: string;
}

/** What {@link sidecarArtefacts} compiles: the model's Envoy options without the file paths. */
export type SidecarCompileOptions = Omit<EnvoyOptions, 'sds' | 'accessLog'> & {
  /** Header that carries the verified JWT payload to the app (the smoke services read it). */
  payloadHeader: string;
  /** Envoy's access log, relative to the sidecar's dir (see {@link sidecarAccessLog}). */
  accessLog?: string;
};

/**
 * Where a sidecar's access log goes, relative to its dir: the dir itself, or for a sidecar in a pod
 * the pod's own writable subdirectory (the dir is root's).
 */
export function sidecarAccessLog(inPod: boolean): string {
  return inPod ? join(POD_WORK_DIR, sidecarFiles.accessLog) : sidecarFiles.accessLog;
}

/**
 * The bootstrap and SDS files of one sidecar whose dir is `dir` and whose SVID is `svid`: the
 * `compileEnvoy` output. Pure; used for the real files and for validation.
 */
export function sidecarArtefacts(
  model: BoundModel,
  o: SidecarCompileOptions,
  dir: string,
  svid: SvidFiles,
): EnvoyArtefacts {
  return compileEnvoy(model, {
    ...o,
    ...(o.accessLog !== undefined ? { accessLog: join(dir, o.accessLog) } : {}),
    sds: {
      dir: join(dir, sidecarFiles.sdsDir),
      certChain: svid.cert,
      privateKey: svid.key,
      trustBundle: svid.bundle,
    },
  });
}

/** The SDS files as LocalProcess files (paths relative to `dir`). */
export function relativeSdsFiles(a: EnvoyArtefacts, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, content] of Object.entries(a.sdsFiles)) {
    if (!path.startsWith(`${dir}/`))
      throw new Error(`SDS file ${path} is outside the sidecar's dir ${dir}`);
    out[path.slice(dir.length + 1)] = `${JSON.stringify(content, null, 2)}\n`;
  }
  return out;
}

/**
 * `envoy --mode validate` on the sidecar's config, compiled into a scratch dir (validation opens the
 * SDS files and the watched directories, which do not exist before the first start). Resolves null
 * when Envoy accepts it, else Envoy's own message.
 */
export async function validateSidecar(
  model: BoundModel,
  o: SidecarCompileOptions,
  transform: (b: EnvoyBootstrap) => EnvoyBootstrap = (b) => b,
): Promise<string | null> {
  const scratch = mkdtempSync(join(tmpdir(), 'trellis-sidecar-check-'));
  try {
    const pki = join(scratch, 'pki');
    mkdirSync(pki);
    const a = sidecarArtefacts(model, o, scratch, {
      cert: join(pki, svidFiles.cert),
      key: join(pki, svidFiles.key),
      bundle: join(pki, svidFiles.bundle),
    });
    mkdirSync(join(scratch, sidecarFiles.sdsDir));
    if (o.accessLog !== undefined)
      mkdirSync(dirname(join(scratch, o.accessLog)), { recursive: true });
    for (const [rel, text] of Object.entries(relativeSdsFiles(a, scratch)))
      writeFileSync(join(scratch, rel), text);
    const check = await validateEnvoyConfig(
      transform(a.bootstrap) as unknown as Record<string, unknown>,
    );
    return check.ok ? null : check.error;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Inputs of a {@link LocalSidecar}. */
export interface LocalSidecarArgs {
  /** The policy model: listeners, RBAC, jwt_authn and rate limits come from `compileEnvoy`. */
  model: BoundModel;
  /** The workload this sidecar fronts (a key of `model.workloads`). */
  workload: string;
  /** Issues the workload's SVID. */
  ca: LocalMeshCa;
  /** Directory of the SVID files, rotated in place (Envoy watches it). */
  certDir: string;
  /** The Envoy's directory: bootstrap, SDS files, log (a LocalProcess dir). */
  dir: string;
  /** Admin port, bound to 127.0.0.1 (stats, config dump, `/ready`). */
  adminPort: number;
  /** Inbound listener port per model port name. */
  inbound: Record<string, number>;
  /** The address the inbound listeners bind (a pod's address). @default '127.0.0.1' */
  inboundAddress?: string;
  /**
   * Run Envoy in this pod, as its user, which alone may read the SVID key; admin and egress
   * listeners are then on the pod's own loopback. @default none: on the host
   */
  pod?: pulumi.Input<PodLaunch>;
  /** Where the app listens, per model port name (not for the edge workload). */
  app?: Record<string, EnvoyEndpoint>;
  /** One upstream per `calls` entry; see `EnvoyOptions.outbound`. */
  outbound?: EnvoyOptions['outbound'];
  /** JWKS source per provider; see `EnvoyOptions.jwks`. @default the model's jwksUri */
  jwks?: EnvoyOptions['jwks'];
  /**
   * The metrics listener (ADR 0020): mTLS for the model's metrics scraper only; its `statsPort` must
   * be `adminPort`. The SVID then also carries the DNS name Prometheus checks
   * (`metricsServerName`). @default none
   */
  metrics?: EnvoyOptions['metrics'];
  /**
   * Tracing (ADR 0023): the collector's front and the telemetry egress port, when the model declares
   * `tracing`. @default none
   */
  tracing?: EnvoyOptions['tracing'];
  /**
   * Header carrying the verified JWT payload to the app.
   * @default identityHeaders.jwtPayload (what the smoke services read; docs/services.md)
   */
  payloadHeader?: string;
  /**
   * Test stacks only (ADR 0025): a fault delay filter on the inbound HTTP listeners, inert (0 %)
   * until the admin runtime turns it on; see `EnvoyOptions.faultInjection`. @default false
   */
  faultInjection?: boolean;
  /**
   * The per-route request-time histograms' buckets (ms), for an edge whose routes the SLO rules
   * judge by budgets Envoy's default buckets cannot count (`sloBucketsMs`). @default Envoy's
   */
  routeHistogramBucketsMs?: readonly number[];
  /** Envoy worker threads. @default 1 */
  concurrency?: number;
  /** @default 'info' */
  logLevel?: string;
  /** SVID lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the SVID now (rotated without a restart). @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 60_000 */
  readyTimeoutMs?: number;
  /**
   * A last change to the compiled bootstrap, e.g. a local experiment with an Envoy setting. The
   * result is validated like the rest. @default none
   */
  transformBootstrap?: (b: EnvoyBootstrap) => EnvoyBootstrap;
}

const defaults = {
  payloadHeader: identityHeaders.jwtPayload,
  concurrency: 1,
  logLevel: 'info',
  certValidHours: 24,
  readyTimeoutMs: 60_000,
};

/**
 * One workload's Envoy sidecar on loopback: its SVID from the Mesh CA (SPIFFE URI SAN, rotated by
 * file SDS from a watched directory, no restart), and Envoy with the bootstrap `compileEnvoy` makes
 * from the model (inbound mTLS with the callers' SANs, jwt_authn, RBAC, local rate limits, XFCC;
 * outbound TLS origination with the SVID). The bootstrap is checked with `envoy --mode validate`
 * before anything starts: a bad one fails `up` with Envoy's message.
 */
export class LocalSidecar extends pulumi.ComponentResource {
  public readonly workload: string;
  public readonly spiffeId: string;
  /** `http://127.0.0.1:<adminPort>`. */
  public readonly adminUrl: string;
  public readonly inbound: Record<string, number>;
  public readonly certificate: WorkloadCertificate;
  public readonly envoy: LocalProcess;
  /** Envoy's JSON access log (`./trellis audit` reads it). */
  public readonly accessLogFile: string;

  constructor(name: string, args: LocalSidecarArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Sidecar', name, {}, opts);
    if (!Object.hasOwn(args.model.workloads, args.workload))
      throw new pulumi.ResourceError(
        `${name}: workload '${args.workload}' is not in the model (have ${Object.keys(args.model.workloads).join(', ')})`,
        this,
      );
    const port = (field: string, v: number) => {
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ${field} must be a TCP port, got ${v}`, this);
    };
    port('adminPort', args.adminPort);
    for (const [k, v] of Object.entries(args.inbound)) port(`inbound.${k}`, v);
    for (const [k, v] of Object.entries(args.app ?? {})) port(`app.${k}`, v.port);
    if (args.tracing !== undefined) {
      port('tracing.collector.port', args.tracing.collector.port);
      if (args.tracing.egressPort !== undefined)
        port('tracing.egressPort', args.tracing.egressPort);
    }
    if (args.metrics !== undefined) {
      port('metrics.port', args.metrics.port);
      if (args.metrics.statsPort !== args.adminPort)
        throw new pulumi.ResourceError(
          `${name}: metrics.statsPort must be the adminPort (${args.adminPort}), got ${args.metrics.statsPort}`,
          this,
        );
    }
    for (const [k, v] of Object.entries(args.outbound ?? {})) {
      port(`outbound.${k}.port`, v.port);
      if (v.listenPort !== undefined) port(`outbound.${k}.listenPort`, v.listenPort);
    }
    const concurrency = args.concurrency ?? defaults.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
      throw new pulumi.ResourceError(
        `${name}: concurrency must be an integer in [1, 64], got ${concurrency}`,
        this,
      );

    this.workload = args.workload;
    this.spiffeId = spiffeId(args.model, args.workload);
    this.adminUrl = `http://127.0.0.1:${args.adminPort}`;
    this.inbound = { ...args.inbound };
    const compileOpts: SidecarCompileOptions = {
      workload: args.workload,
      inbound: args.inbound,
      ...(args.inboundAddress !== undefined ? { inboundAddress: args.inboundAddress } : {}),
      ...(args.app ? { app: args.app } : {}),
      ...(args.outbound ? { outbound: args.outbound } : {}),
      ...(args.jwks ? { jwks: args.jwks } : {}),
      ...(args.metrics ? { metrics: args.metrics } : {}),
      ...(args.faultInjection === true ? { faultInjection: true } : {}),
      ...(args.routeHistogramBucketsMs !== undefined
        ? { routeHistogramBucketsMs: args.routeHistogramBucketsMs }
        : {}),
      ...(args.tracing ? { tracing: args.tracing } : {}),
      adminPort: args.adminPort,
      nodeId: `${args.workload}-sidecar`,
      payloadHeader: args.payloadHeader ?? defaults.payloadHeader,
      accessLog: sidecarAccessLog(args.pod !== undefined),
    };
    this.accessLogFile = join(args.dir, sidecarAccessLog(args.pod !== undefined));
    const transform = args.transformBootstrap ?? ((b: EnvoyBootstrap) => b);
    // Compile now, so that a model the compiler refuses fails here, naming the workload.
    try {
      sidecarArtefacts(args.model, compileOpts, args.dir, {
        cert: join(args.certDir, svidFiles.cert),
        key: join(args.certDir, svidFiles.key),
        bundle: join(args.certDir, svidFiles.bundle),
      });
    } catch (err) {
      throw new pulumi.ResourceError(`${name}: ${(err as Error).message}`, this);
    }

    this.certificate = new WorkloadCertificate(
      `${name}-svid`,
      {
        ca: args.ca,
        spiffeId: this.spiffeId,
        ...(args.metrics !== undefined
          ? { dns: [metricsServerName(args.model, args.workload)] }
          : {}),
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        ...(args.pod !== undefined
          ? { owner: pulumi.output(args.pod).apply((p) => ({ uid: p.uid, gid: p.gid })) }
          : {}),
      },
      { parent: this },
    );

    // Only paths go into the process's inputs: a rotated SVID changes no input, so Envoy keeps running
    // and picks the new files up through SDS.
    const files = this.certificate.files.apply(async (f) => {
      const error = await validateSidecar(args.model, compileOpts, transform);
      if (error !== null)
        throw new pulumi.ResourceError(
          `${name}: envoy --mode validate refused the bootstrap of '${args.workload}':\n${error}`,
          this,
          true, // Envoy's message says it all; a stack trace would bury it.
        );
      const a = sidecarArtefacts(args.model, compileOpts, args.dir, f);
      return {
        [sidecarFiles.bootstrap]: `${JSON.stringify(transform(a.bootstrap), null, 2)}\n`,
        ...relativeSdsFiles(a, args.dir),
      };
    });

    this.envoy = new LocalProcess(
      `${name}-envoy`,
      {
        dir: args.dir,
        command: pulumi.output(envoy.ensure()),
        args: envoyArgs({
          configPath: join(args.dir, sidecarFiles.bootstrap),
          concurrency,
          logLevel: args.logLevel ?? defaults.logLevel,
        }),
        env: {},
        files,
        // LIVE once the listeners are up with their SDS secrets loaded (admin GET /ready).
        ready:
          args.pod === undefined
            ? { kind: 'http', url: `${this.adminUrl}/ready`, status: 200 }
            : pulumi.output(args.pod).apply((p) => ({
                kind: 'http' as const,
                url: `${this.adminUrl}/ready`,
                status: 200,
                netns: p.netns, // the admin listens on the pod's own loopback
              })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 5_000,
        ...(args.pod !== undefined ? { pod: args.pod } : {}),
      },
      { parent: this, dependsOn: [this.certificate] },
    );

    this.registerOutputs({ spiffeId: this.spiffeId, adminUrl: this.adminUrl });
  }
}
