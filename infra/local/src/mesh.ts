/**
 * The request path of the local stack: one Envoy sidecar per workload (SVID from the Mesh CA), the
 * smoke services behind theirs, and nginx in front of the edge sidecar.
 *
 *   client ─TLS─▶ nginx ─▶ ingress sidecar ═mTLS═▶ orders-api sidecar ─▶ orders-api
 *                                                  (jwt_authn, RBAC, rate limit)   │ plaintext on
 *   Cassandra ◀═mTLS (workload SVID)═ each service's sidecar egress ◀──────────────┘ loopback
 *   Kafka     ◀═mTLS (workload SVID)═┘
 *
 * With pods (the default), each workload is a pod: the ingress pod holds nginx (on its address)
 * and the edge sidecar (on its loopback); a host relay keeps https://localhost:<ingressHttps>.
 *
 * Call order (infra/local/index.ts): `const data = deployData(ctx)`, `const idp = deployIdentity(ctx)`,
 * then `deployMesh(ctx, data, idp)`. Every port, address and file comes from `ctx.model`, the model
 * bound to the stack's environment (policy `bind`).
 */
import * as pulumi from '@pulumi/pulumi';
import { resolve } from 'node:path';
import { identityHeaders, svidFiles } from '@trellis/contracts';
import { ordersDdl } from '@trellis/contracts/orders-table';
import { ddl as ledgerDdl } from '@trellis/ledger/schema';
import type { AdminConnection } from '@trellis/components/local/cassandra-impl';
import type { LocalDataMetricsFront } from '@trellis/components/local/data-metrics';
import { LocalIngress } from '@trellis/components/local/ingress';
import { LocalRelay } from '@trellis/components/local/relay';
import { LocalService } from '@trellis/components/local/service';
import { LocalSidecar, type LocalSidecarArgs } from '@trellis/components/local/sidecar';
import {
  envoyOptions,
  sloBucketsMs,
  spiffeId,
  type BoundModel,
  type EnvoyEndpoint,
} from '@trellis/policy';
import type { StackContext } from './context.ts';
import { deployDataMetrics, planNginxMetrics } from './data-metrics.ts';
import { PLATFORM_ADMIN, type DataLayer } from './data.ts';
import type { IdentityLayer } from './identity.ts';
import { serviceEnv } from './service-env.ts';

const repoRoot = resolve(import.meta.dirname, '../../..');

/**
 * The smoke services the stack knows how to run, by workload name, with the table DDL each needs.
 * orders-api (reads) and orders-writer (writes) share the orders table (@trellis/contracts/orders-table).
 */
export const serviceImplementations: Readonly<
  Record<string, { entry: string; ddl: readonly string[] }>
> = {
  'orders-api': {
    entry: resolve(repoRoot, 'packages/services/orders-api/src/server.ts'),
    ddl: ordersDdl,
  },
  'orders-writer': {
    entry: resolve(repoRoot, 'packages/services/orders-writer/src/server.ts'),
    ddl: ordersDdl,
  },
  ledger: { entry: resolve(repoRoot, 'packages/services/ledger/src/server.ts'), ddl: ledgerDdl },
};

/** How a service gets its tables: it applies its DDL, or waits for the service that applies it. */
export type SchemaStep = { apply: readonly string[] } | { after: string };

/**
 * Who applies which table DDL (pure): each distinct DDL once, by the first of `services` (in the
 * order given) that needs it; every other service needing the same DDL starts after that one's
 * schema. Two services applying one DDL side by side would race two schema changes to Cassandra.
 */
export function schemaPlan(services: readonly string[]): Record<string, SchemaStep> {
  const owners = new Map<string, string>();
  const plan: Record<string, SchemaStep> = {};
  for (const w of services) {
    const impl = serviceImplementations[w];
    if (!impl) continue;
    const key = impl.ddl.join(';\n');
    const owner = owners.get(key);
    if (owner === undefined) {
      owners.set(key, w);
      plan[w] = { apply: impl.ddl };
    } else plan[w] = { after: owner };
  }
  return plan;
}

/** What a {@link LocalSidecar} takes besides its CA and certificate settings. */
export type SidecarPlan = Pick<
  LocalSidecarArgs,
  | 'workload'
  | 'certDir'
  | 'dir'
  | 'adminPort'
  | 'inbound'
  | 'inboundAddress'
  | 'app'
  | 'outbound'
  | 'jwks'
  | 'metrics'
  | 'tracing'
> & { payloadHeader: string };

/**
 * The sidecar of `workload` as the bound model places it (pure): the `EnvoyOptions` policy derives
 * from the binding, with the SVID directory and the sidecar's own directory.
 */
export function sidecarPlan(model: BoundModel, workload: string): SidecarPlan {
  const o = envoyOptions(model, workload);
  const b = model.binding.workloads[workload];
  if (b?.svid.kind !== 'files' || b.proxyDir === undefined || o.adminPort === undefined)
    throw new Error(`workloads.${workload}: not bound to local files and an admin port`);
  return {
    workload,
    certDir: b.svid.dir,
    dir: b.proxyDir,
    adminPort: o.adminPort,
    inbound: o.inbound,
    ...(o.inboundAddress !== undefined ? { inboundAddress: o.inboundAddress } : {}),
    ...(o.app ? { app: o.app } : {}),
    ...(o.outbound ? { outbound: o.outbound } : {}),
    ...(o.jwks ? { jwks: o.jwks } : {}),
    ...(o.metrics ? { metrics: o.metrics } : {}),
    ...(o.tracing ? { tracing: o.tracing } : {}),
    payloadHeader: identityHeaders.jwtPayload,
  };
}

/**
 * The ports the pods' sidecars dial at the host's end of the pod link (pure): their data-service
 * upstreams, JWKS endpoints and the trace collector's front there, which the host relays to the
 * servers on loopback.
 */
export function hostRelayPorts(model: BoundModel, pods: readonly string[]): number[] {
  const ports = new Set<number>();
  for (const w of pods) {
    const b = model.binding.workloads[w];
    if (b?.hostAddress === undefined) continue;
    for (const e of Object.values(b.egress))
      if (e.upstream.address === b.hostAddress) ports.add(e.upstream.port);
    const o = envoyOptions(model, w);
    for (const j of Object.values(o.jwks ?? {}))
      if ('address' in j && j.address === b.hostAddress) ports.add(j.port);
    // The trace collector's mTLS front (ADR 0023).
    if (o.tracing?.collector.address === b.hostAddress) ports.add(o.tracing.collector.port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** One sidecar as the lead exports it. */
export interface SidecarInfo {
  spiffeId: string;
  /**
   * Envoy admin on loopback: `/stats`, `/config_dump`, `/certs`, `/ready`. In a pod, that is the
   * pod's own loopback: reach it from inside the pod (`podCommand`).
   */
  adminUrl: string;
  inbound: Record<string, number>;
  /** The SVID files Envoy watches (rotated in place). */
  certDir: string;
  logFile: pulumi.Output<string>;
}

/** What {@link deployMesh} returns. */
export interface MeshLayer {
  /** `https://localhost:<ingressHttps>`: trust `trustBundle` (the Mesh CA root). */
  ingressUrl: string;
  sidecars: Record<string, SidecarInfo>;
  /** Each app's URL on loopback (in a pod: the pod's own, reached from inside it). */
  services: Record<string, { url: string; logFile: pulumi.Output<string> }>;
  ingress: LocalIngress;
  /**
   * nginx's metrics front, when the model has a metrics scraper: an Envoy in the edge pod (or on
   * the host's loopback without pods) that admits only the scraper, reading nginx's stub_status
   * gauges from nginx's metrics server on the pod's own loopback.
   */
  metrics?: { front: LocalDataMetricsFront; target: EnvoyEndpoint };
  /** Depend on these to act after the whole request path is up. */
  resources: pulumi.Resource[];
}

/** Settings of {@link deployMesh} beyond the stack context. */
export interface MeshSettings {
  /**
   * Bump to re-issue nginx's edge certificate now. It is not tied to `ctx.rotation` (the workload
   * certificates): nginx takes a new certificate by a graceful reload, which closes idle keep-alive
   * connections, and a client that sends on one at that moment sees it closed. The certificate is
   * also renewed by any `up` inside its renewal window. @default 0
   */
  edgeRotation?: pulumi.Input<number>;
  /**
   * Test stacks only (ADR 0025): every backend sidecar gets an inert fault delay filter that a test
   * turns on through the sidecar's admin runtime (`/runtime_modify`, from inside its pod). The edge
   * never gets one. @default false
   */
  faultInjection?: boolean;
  /**
   * The environment of `budgets.environments` the stack's SLO rules judge by: the edge's per-route
   * histograms then get the buckets its budgets need (`sloBucketsMs`). @default production's
   */
  sloEnvironment?: string;
}

/**
 * The smoke service of backend `w` behind its sidecar, with its tables created by platform-admin
 * (or, when another service applies the same DDL, after that one's schema: `step`); undefined (and a
 * warning) for a workload the stack has no implementation of.
 */
function deployService(
  ctx: StackContext,
  data: DataLayer,
  w: string,
  step: SchemaStep | undefined,
  dependsOn: pulumi.Resource[],
  opts?: pulumi.ComponentResourceOptions,
): LocalService | undefined {
  const pod = podLaunch(ctx, w);
  const impl = serviceImplementations[w];
  const appPort = Object.values(ctx.model.binding.workloads[w]?.app ?? {})[0]?.port;
  if (!impl || step === undefined || appPort === undefined) {
    pulumi.log.warn(`workload ${w} has no local implementation: only its sidecar runs`);
    return undefined;
  }
  const admin = ctx.pkiDir(PLATFORM_ADMIN);
  const adminConnection: AdminConnection = {
    host: data.cassandra.host,
    port: data.cassandra.port,
    cert: `${admin}/${svidFiles.cert}`,
    key: `${admin}/${svidFiles.key}`,
    ca: `${admin}/${svidFiles.bundle}`,
  };
  return new LocalService(
    w,
    {
      workload: w,
      entry: impl.entry,
      dir: ctx.runDir(w),
      port: appPort,
      env: serviceEnv(ctx.model, w, data),
      ...('apply' in step
        ? {
            schema: {
              statements: step.apply,
              admin: adminConnection,
              localDataCenter: data.cassandra.localDataCenter,
            },
          }
        : {}),
      ...(pod !== undefined ? { pod } : {}),
    },
    { ...opts, dependsOn: [...dependsOn, ...data.resources] },
  );
}

/** The launch of `w`'s pod, when the stack runs it as one. */
function podLaunch(ctx: StackContext, w: string) {
  const pods = ctx.pods;
  if (pods === undefined || !Object.hasOwn(pods.slots, w)) return undefined;
  return pods.resource.members.apply((m) => {
    const p = m[w];
    if (p === undefined) throw new Error(`pods: ${w} was not created`);
    return p.launch;
  });
}

/** The sidecars, services and ingress of the stack (see the module comment for the call order). */
export function deployMesh(
  ctx: StackContext,
  data: DataLayer,
  idp: IdentityLayer,
  opts?: pulumi.ComponentResourceOptions,
  settings: MeshSettings = {},
): MeshLayer {
  const model = ctx.model;
  const edge = model.binding.edge?.workload;
  if (edge === undefined) throw new Error('workloads: the local stack needs an edge workload');
  // The pods' sidecars reach the stack's servers through the host's relay (see LocalRelay).
  const podNames = Object.keys(ctx.pods?.slots ?? {});
  const relayPorts = hostRelayPorts(model, podNames);
  const relay =
    ctx.pods !== undefined && relayPorts.length > 0
      ? new LocalRelay(
          'pod-relay',
          {
            dir: ctx.runDir('pod-relay'),
            listen: ctx.pods.subnet.hostAddress,
            ports: relayPorts,
          },
          { ...opts, dependsOn: [ctx.pods.resource] },
        )
      : undefined;
  const sidecar = (
    w: string,
    dependsOn: pulumi.Resource[],
    extra: Pick<LocalSidecarArgs, 'faultInjection' | 'routeHistogramBucketsMs'> = {},
  ): LocalSidecar => {
    const pod = podLaunch(ctx, w);
    const podDeps =
      pod !== undefined && ctx.pods ? [ctx.pods.resource, ...(relay ? [relay] : [])] : [];
    return new LocalSidecar(
      `${w}-sidecar`,
      {
        model,
        ca: ctx.ca,
        ...sidecarPlan(model, w),
        certValidHours: ctx.certValidHours,
        rotation: ctx.rotation,
        ...(pod !== undefined ? { pod } : {}),
        ...extra,
      },
      { ...opts, dependsOn: [...dependsOn, ...podDeps] },
    );
  };

  const sidecars: Record<string, LocalSidecar> = {};
  const services: Record<string, LocalService> = {};
  const backends = Object.keys(model.workloads)
    .filter((w) => w !== edge)
    .sort();
  const schemas = schemaPlan(backends);
  for (const w of backends) {
    const s = (sidecars[w] = sidecar(
      w,
      [],
      settings.faultInjection === true ? { faultInjection: true } : {},
    ));
    const step = schemas[w];
    // A service sharing another's tables starts once that one's schema is applied.
    const owner = step !== undefined && 'after' in step ? services[step.after]?.schema : undefined;
    const service = deployService(ctx, data, w, step, [s, ...(owner ? [owner] : [])], opts);
    if (service) services[w] = service;
  }
  // The edge starts once the backends' sidecars are up (nginx's first request has somewhere to go).
  sidecars[edge] = sidecar(
    edge,
    backends.map((w) => sidecars[w] as LocalSidecar),
    settings.sloEnvironment !== undefined
      ? { routeHistogramBucketsMs: sloBucketsMs(model, settings.sloEnvironment) }
      : {},
  );

  const edgeInbound = Object.values(model.binding.workloads[edge]?.inbound ?? {})[0];
  if (edgeInbound === undefined) throw new Error(`workloads.${edge}.ports: the edge needs a port`);
  const listen = model.binding.edge?.listen;
  if (listen === undefined) throw new Error('binding.edge.listen: the local binding places nginx');
  // In the edge's pod (the ingress gateway's), nginx is the pod's public listener and reaches the
  // edge sidecar on the pod's own loopback.
  const edgePod = podLaunch(ctx, edge);
  const nginxMetrics = planNginxMetrics(
    model,
    ctx.ports,
    edgePod !== undefined ? listen.address : undefined,
  );
  const ingress = new LocalIngress(
    'ingress-nginx',
    {
      model,
      ca: ctx.ca,
      certDir: ctx.pkiDir('ingress-edge'),
      dir: ctx.runDir('nginx'),
      listen,
      upstream: edgeInbound,
      certValidHours: ctx.certValidHours,
      rotation: settings.edgeRotation ?? 0,
      ...(edgePod !== undefined ? { pod: edgePod } : {}),
      ...(nginxMetrics !== undefined ? { metricsPort: nginxMetrics.exporterPort } : {}),
    },
    {
      ...opts,
      dependsOn: [sidecars[edge], ...Object.values(services), ...idp.resources],
    },
  );
  // Host users keep https://localhost:<ingressHttps>: a relay on the host's loopback to nginx in
  // the pod (TLS end to end; it sees only bytes).
  const ingressRelay =
    listen.address !== '127.0.0.1'
      ? new LocalRelay(
          'ingress-relay',
          {
            dir: ctx.runDir('ingress-relay'),
            listen: '127.0.0.1',
            target: listen.address,
            ports: [listen.port],
          },
          { ...opts, dependsOn: [ingress] },
        )
      : undefined;

  const metricsFront =
    nginxMetrics === undefined
      ? undefined
      : deployDataMetrics(
          ctx,
          [nginxMetrics],
          edgePod !== undefined ? { nginx: { launch: edgePod, address: listen.address } } : {},
          { ...opts, dependsOn: [ingress] },
        ).fronts[0];

  return {
    ingressUrl: ingress.url,
    sidecars: Object.fromEntries(
      Object.entries(sidecars).map(([w, s]) => [
        w,
        {
          spiffeId: spiffeId(model, w),
          adminUrl: s.adminUrl,
          inbound: s.inbound,
          certDir: sidecarPlan(model, w).certDir,
          logFile: s.envoy.logFile,
        },
      ]),
    ),
    services: Object.fromEntries(
      Object.entries(services).map(([w, s]) => [w, { url: s.url, logFile: s.logFile }]),
    ),
    ingress,
    ...(metricsFront !== undefined
      ? { metrics: { front: metricsFront, target: metricsFront.target } }
      : {}),
    resources: [
      ingress,
      ...(ingressRelay ? [ingressRelay] : []),
      ...Object.values(sidecars),
      ...Object.values(services),
    ],
  };
}
