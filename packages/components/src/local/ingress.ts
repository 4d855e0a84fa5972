import * as pulumi from '@pulumi/pulumi';
import { nginxLaunchSpec, testNginxConfig } from '@trellis/local/harness';
import type { PodLaunch } from '@trellis/local/pods';
import { compileNginxHttp, type BoundModel } from '@trellis/policy';
import { join } from 'node:path';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';
import type { EdgeProbe } from './ingress-impl.ts';
import { POD_WORK_DIR } from './process-impl.ts';

const IMPL = new URL('./ingress-impl.ts', import.meta.url).pathname;

/** Inputs of a {@link LocalIngress}. */
export interface LocalIngressArgs {
  /** The policy model: hosts, paths and methods come from `compileNginxHttp`. */
  model: BoundModel;
  /** Issues the edge certificate (the same root users pass to curl with `--cacert`). */
  ca: LocalMeshCa;
  /** Directory of the edge certificate files. */
  certDir: string;
  /**
   * nginx's LocalProcess dir; its prefix (nginx.conf, pid, temp dirs, access log) is this dir, or
   * `<dir>/pod` in a pod (the one place the pod's user writes).
   */
  dir: string;
  /** Where nginx listens with TLS (the binding's `edge.listen`). */
  listen: { address?: string; port: number };
  /**
   * Run nginx in this pod, as its user (no `user` directive: its workers stay that user), which
   * then owns its certificate and key. @default none: on the host
   */
  pod?: pulumi.Input<PodLaunch>;
  /** The edge sidecar's plaintext loopback listener. */
  upstream: { address: string; port: number };
  /** DNS names on the edge certificate. @default ['localhost'] */
  dnsNames?: string[];
  /** IP addresses on the edge certificate. @default ['127.0.0.1'] and the listen address */
  ipAddresses?: string[];
  /** `client_max_body_size`. @default '1m' */
  clientMaxBodySize?: string;
  /**
   * Serve nginx's own metrics (`GET /metrics`: the stub_status connection gauges as Prometheus text)
   * on `127.0.0.1:<metricsPort>`, the pod's own loopback in a pod, for the metrics front beside it
   * (`LocalDataMetricsFront` with `service: 'nginx'`). Needs a model with a metrics scraper.
   * @default none
   */
  metricsPort?: number;
  /** @default 1 */
  workerProcesses?: number;
  /** Edge certificate lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the edge certificate now (new connections get it; nothing reloads). @default 0 */
  rotation?: pulumi.Input<number>;
  /** @default 30_000 */
  readyTimeoutMs?: number;
}

const defaults = {
  address: '127.0.0.1',
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
  clientMaxBodySize: '1m',
  workerProcesses: 1,
  certValidHours: 24,
  readyTimeoutMs: 30_000,
};

/**
 * The local ingress: nginx terminating TLS for `localhost` with a certificate from the Mesh CA,
 * routing the model's routes (host, path, method) to the edge sidecar, with a request size limit,
 * `X-Request-Id` and `X-Forwarded-For`. The config is checked with `nginx -t` before it is used; nginx
 * reads the certificate at each TLS handshake, so a re-issued one reaches new connections with no
 * reload and established keep-alive connections stay open (ADR 0032). With `pod`, nginx runs in the edge's
 * pod as its user, like Istio's ingress gateway beside the edge sidecar.
 */
export class LocalIngress extends pulumi.ComponentResource {
  /** `https://<first DNS name>:<port>`. */
  public readonly url: string;
  public readonly certificate: WorkloadCertificate;
  public readonly nginx: LocalProcess;
  /** The access log (JSON lines with the request id). */
  public readonly accessLog: string;

  constructor(name: string, args: LocalIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Ingress', name, {}, opts);
    for (const [field, v] of [
      ['listen.port', args.listen.port],
      ['upstream.port', args.upstream.port],
      ...(args.metricsPort !== undefined ? [['metricsPort', args.metricsPort] as const] : []),
    ] as const)
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ${field} must be a TCP port, got ${v}`, this);
    if (args.metricsPort !== undefined && args.model.binding.metrics === undefined)
      throw new pulumi.ResourceError(
        `${name}: metricsPort: the model declares no metrics scraper (metrics.scraper) to read nginx's metrics`,
        this,
      );
    const maxBody = args.clientMaxBodySize ?? defaults.clientMaxBodySize;
    // nginx size syntax: a number with an optional k/m/g suffix (ngx_http_core_module).
    if (!/^\d+[kKmMgG]?$/.test(maxBody))
      throw new pulumi.ResourceError(
        `${name}: clientMaxBodySize must be a size such as 1m or 512k, got '${maxBody}'`,
        this,
      );
    const dnsNames = args.dnsNames ?? defaults.dnsNames;
    if (dnsNames.length === 0)
      throw new pulumi.ResourceError(`${name}: dnsNames must name at least one host`, this);
    const address = args.listen.address ?? defaults.address;
    this.url = `https://${dnsNames[0]}:${args.listen.port}`;
    // In a pod, nginx writes (pid, temp files, access log) only below its user's own directory.
    const inPod = args.pod !== undefined;
    const prefix = inPod ? join(args.dir, POD_WORK_DIR) : args.dir;
    this.accessLog = join(prefix, 'access.json');

    this.certificate = new WorkloadCertificate(
      `${name}-cert`,
      {
        ca: args.ca,
        dns: dnsNames,
        ips: args.ipAddresses ?? [...new Set([...defaults.ipAddresses, address])],
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        ...(args.pod !== undefined
          ? { owner: pulumi.output(args.pod).apply((p) => ({ uid: p.uid, gid: p.gid })) }
          : {}),
      },
      { parent: this },
    );

    // Paths only: a re-issued certificate changes no input of the process. nginx reads the files at
    // each TLS handshake (`perHandshake`, ADR 0032): a renewed certificate reaches new connections
    // with no reload and no restart, and established keep-alive connections stay open.
    const netns = pulumi.output(args.pod).apply((p) => p?.netns);
    const spec = pulumi.all([this.certificate.files, netns]).apply(async ([f, podNetns]) => {
      const http = (accessLog?: string) =>
        compileNginxHttp(args.model, {
          listen: { address, port: args.listen.port },
          tls: { certificate: f.cert, key: f.key, perHandshake: true },
          upstream: args.upstream,
          ...(accessLog !== undefined ? { accessLog } : {}),
          clientMaxBodySize: maxBody,
          ...(args.metricsPort !== undefined ? { metrics: { port: args.metricsPort } } : {}),
        });
      // Checked without the access log, whose directory exists only once the process is created.
      // In the pod's namespace when nginx runs there: `nginx -t` binds the pod's address.
      const check = await testNginxConfig(
        http(),
        podNetns !== undefined ? { netns: podNetns } : {},
      );
      if (!check.ok)
        throw new pulumi.ResourceError(
          `${name}: nginx -t refused the config:\n${check.error}`,
          this,
          true, // nginx's message says it all; a stack trace would bury it.
        );
      const launch = await nginxLaunchSpec({
        dir: prefix,
        config: http(this.accessLog),
        workerProcesses: args.workerProcesses ?? defaults.workerProcesses,
        // The compiled config has its own JSON access log with the request id.
        render: { accessLog: null, rootUser: !inPod },
      });
      // LocalProcess files are relative to its dir: the prefix's are under `pod/` in a pod.
      const files = Object.fromEntries(
        Object.entries(launch.files).map(([rel, text]) => [
          inPod ? join(POD_WORK_DIR, rel) : rel,
          text,
        ]),
      );
      return { ...launch, files };
    });

    this.nginx = new LocalProcess(
      `${name}-nginx`,
      {
        dir: args.dir,
        command: spec.command,
        args: spec.args,
        env: { PATH: '/usr/bin:/bin' },
        files: spec.files,
        // A TLS handshake with the edge certificate, not a bare connect: nginx reads the certificate
        // at each handshake, so a bad one shows here, not at its start.
        ready: this.certificate.files.apply((f) => ({
          kind: 'module' as const,
          module: IMPL,
          fn: 'probe',
          arg: {
            host: address,
            port: args.listen.port,
            servername: dnsNames[0] ?? 'localhost',
            caFile: f.bundle,
          } satisfies EdgeProbe,
        })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 10_000,
        ...(args.pod !== undefined ? { pod: args.pod } : {}),
      },
      { parent: this, dependsOn: [this.certificate] },
    );

    this.registerOutputs({ url: this.url, accessLog: this.accessLog });
  }
}
