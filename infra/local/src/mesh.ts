/**
 * The request path of the local stack: one Envoy sidecar per workload (SVID from the Mesh CA), the
 * smoke services behind theirs, and nginx in front of the edge sidecar.
 *
 *   client ─TLS─▶ nginx ─▶ ingress sidecar ═mTLS═▶ orders-api sidecar ─▶ orders-api
 *                                                  (jwt_authn, RBAC, rate limit)   │ plaintext on
 *   Cassandra ◀═mTLS (workload SVID)═ orders-api / ledger sidecar egress ◀─────────┘ loopback
 *   Kafka     ◀═mTLS (workload SVID)═┘
 *
 * Call order (infra/local/index.ts): `const data = deployData(ctx)`, `const idp = deployIdentity(ctx)`,
 * then `deployMesh(ctx, data, idp)`. Sidecars are compiled from `idp.model` (the model with the issuer
 * of this stack's Keycloak).
 */
import * as pulumi from '@pulumi/pulumi';
import { resolve } from 'node:path';
import { identityHeaders } from '@trellis/contracts';
import { ddl as ledgerDdl } from '@trellis/ledger/schema';
import { ddl as ordersDdl } from '@trellis/orders-api/schema';
import type { AdminConnection } from '@trellis/components/local/cassandra-impl';
import { LocalIngress } from '@trellis/components/local/ingress';
import { LocalService } from '@trellis/components/local/service';
import { LocalSidecar } from '@trellis/components/local/sidecar';
import {
  dataServices,
  edgeWorkloads,
  spiffeId,
  type EnvoyOptions,
  type ValidModel,
} from '@trellis/policy';
import type { StackContext } from './context.ts';
import { PLATFORM_ADMIN, type DataEgress, type DataLayer } from './data.ts';
import type { IdentityLayer } from './identity.ts';
import { egressSlots, sidecarEgressPort, workloadIndex, type PortName } from './ports.ts';
import { serviceEnv } from './service-env.ts';

const repoRoot = resolve(import.meta.dirname, '../../..');

/** The header the sidecars put the verified JWT payload in, and the services read. */
export const PAYLOAD_HEADER = identityHeaders.jwtPayload;

/** The smoke services the stack knows how to run, by workload name. */
export const serviceImplementations: Readonly<
  Record<string, { entry: string; ddl: readonly string[] }>
> = {
  'orders-api': {
    entry: resolve(repoRoot, 'packages/services/orders-api/src/server.ts'),
    ddl: ordersDdl,
  },
  ledger: { entry: resolve(repoRoot, 'packages/services/ledger/src/server.ts'), ddl: ledgerDdl },
};

/** Ports inside a workload's block of `sidecarInboundFrom` and `appFrom`, and admin ports. */
const perWorkload = { block: 10, workloads: 10 } as const;

/** The ports of one workload's sidecar and app. */
export interface WorkloadPorts {
  workload: string;
  /** Position among the model's workload names, sorted (see ports.ts). */
  index: number;
  adminPort: number;
  /** Sidecar inbound listener per model port name. */
  inbound: Record<string, number>;
  /** Where the app listens, per model port name (not for edge workloads). */
  app: Record<string, number>;
}

/**
 * The port plan of the mesh (pure): `envoyAdminFrom + i`, `sidecarInboundFrom + 10 i + p` and
 * `appFrom + 10 i + p` for workload `i` (sorted names) and its `p`-th model port.
 */
export function planMeshPorts(
  model: ValidModel,
  ports: Record<PortName, number>,
): Record<string, WorkloadPorts> {
  const names = Object.keys(model.workloads);
  if (names.length > perWorkload.workloads)
    throw new Error(
      `workloads: the local stack has ports for ${perWorkload.workloads} workloads, the model has ${names.length}`,
    );
  const out: Record<string, WorkloadPorts> = {};
  for (const w of names) {
    const index = workloadIndex(names, w);
    const spec = model.workloads[w];
    if (!spec) continue;
    if (spec.ports.length > perWorkload.block)
      throw new Error(
        `workloads.${w}.ports: the local stack has room for ${perWorkload.block} ports per workload, got ${spec.ports.length}`,
      );
    const inbound: Record<string, number> = {};
    const app: Record<string, number> = {};
    spec.ports.forEach((p, k) => {
      inbound[p.name] = ports.sidecarInboundFrom + perWorkload.block * index + k;
      if (!spec.edge) app[p.name] = ports.appFrom + perWorkload.block * index + k;
    });
    out[w] = { workload: w, index, adminPort: ports.envoyAdminFrom + index, inbound, app };
  }
  return out;
}

/** The one edge workload (nginx's upstream). Throws unless the model has exactly one. */
export function edgeWorkload(model: ValidModel): string {
  const edges = edgeWorkloads(model).sort();
  if (edges.length !== 1 || edges[0] === undefined)
    throw new Error(
      `workloads: the local stack runs one nginx in front of one edge workload; the model has ${edges.length} (${edges.join(', ') || 'none'})`,
    );
  return edges[0];
}

/** The port of `target` that `caller` reaches: the one its routes through `caller` use, else the first. */
function peerPort(model: ValidModel, target: string): string {
  const routed = Object.values(model.routes).find((r) => r.backend === target)?.port;
  const first = model.workloads[target]?.ports[0]?.name;
  const name = routed ?? first;
  if (name === undefined) throw new Error(`workloads.${target}: has no port to call`);
  return name;
}

/**
 * The outbound clusters of `workload`'s sidecar (pure): data services through the data layer's
 * egress plan, peers at their sidecar's inbound port (with a plaintext egress listener for the app,
 * except on the edge, whose routes reach the peers directly).
 */
export function planOutbound(
  model: ValidModel,
  ports: Record<PortName, number>,
  plan: Record<string, WorkloadPorts>,
  egress: readonly DataEgress[],
  workload: string,
): NonNullable<EnvoyOptions['outbound']> {
  const w = model.workloads[workload];
  const me = plan[workload];
  if (!w || !me) throw new Error(`workloads.${workload}: not in the model`);
  const out: NonNullable<EnvoyOptions['outbound']> = {};
  let peer = 0;
  for (const target of w.calls) {
    if ((dataServices as readonly string[]).includes(target)) {
      const e = egress.find((x) => x.workload === workload && x.service === target);
      if (!e)
        throw new Error(
          `workloads.${workload}.calls: the data layer has no ${target} egress for ${workload}`,
        );
      out[target] = {
        address: e.upstream.host,
        port: e.upstream.port,
        listenPort: e.listenPort,
        spiffeId: e.serverSpiffeId,
      };
      continue;
    }
    const there = plan[target];
    const port = there?.inbound[peerPort(model, target)];
    if (port === undefined) throw new Error(`workloads.${workload}.calls: unknown peer ${target}`);
    out[target] = {
      address: '127.0.0.1',
      port,
      ...(w.edge
        ? {}
        : { listenPort: sidecarEgressPort(ports, me.index, egressSlots.peersFrom + peer++) }),
    };
  }
  return out;
}

/** One sidecar as the lead exports it. */
export interface SidecarInfo {
  spiffeId: string;
  /** Envoy admin on loopback: `/stats`, `/config_dump`, `/certs`, `/ready`. */
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
  services: Record<string, { url: string; logFile: pulumi.Output<string> }>;
  ingress: LocalIngress;
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
}

/** The sidecars, services and ingress of the stack (see the module comment for the call order). */
export function deployMesh(
  ctx: StackContext,
  data: DataLayer,
  idp: IdentityLayer,
  opts?: pulumi.ComponentResourceOptions,
  settings: MeshSettings = {},
): MeshLayer {
  const model = idp.model;
  const plan = planMeshPorts(model, ctx.ports);
  const edge = edgeWorkload(model);
  const jwks = { [idp.provider]: { address: '127.0.0.1', port: ctx.ports.keycloakHttp } };
  const admin = `${ctx.pkiDir(PLATFORM_ADMIN)}`;
  const adminConnection: AdminConnection = {
    host: data.cassandra.host,
    port: data.cassandra.port,
    cert: `${admin}/cert.pem`,
    key: `${admin}/key.pem`,
    ca: `${admin}/bundle.pem`,
  };

  const sidecar = (w: string, dependsOn: pulumi.Resource[]): LocalSidecar => {
    const p = plan[w] as WorkloadPorts;
    return new LocalSidecar(
      `${w}-sidecar`,
      {
        model,
        workload: w,
        ca: ctx.ca,
        certDir: ctx.pkiDir(w),
        dir: ctx.runDir(`${w}-sidecar`),
        adminPort: p.adminPort,
        inbound: p.inbound,
        app: Object.fromEntries(
          Object.entries(p.app).map(([name, port]) => [name, { address: '127.0.0.1', port }]),
        ),
        outbound: planOutbound(model, ctx.ports, plan, data.egress, w),
        jwks,
        payloadHeader: PAYLOAD_HEADER,
        certValidHours: ctx.certValidHours,
        rotation: ctx.rotation,
      },
      { ...opts, dependsOn },
    );
  };

  const sidecars: Record<string, LocalSidecar> = {};
  const services: Record<string, LocalService> = {};
  const backends = Object.keys(model.workloads)
    .filter((w) => w !== edge)
    .sort();
  for (const w of backends) {
    sidecars[w] = sidecar(w, []);
    const impl = serviceImplementations[w];
    const p = plan[w] as WorkloadPorts;
    const appPort = Object.values(p.app)[0];
    if (!impl || appPort === undefined) {
      pulumi.log.warn(`workload ${w} has no local implementation: only its sidecar runs`);
      continue;
    }
    services[w] = new LocalService(
      w,
      {
        workload: w,
        entry: impl.entry,
        dir: ctx.runDir(w),
        port: appPort,
        env: serviceEnv(model, w, data),
        schema: {
          statements: impl.ddl,
          admin: adminConnection,
          localDataCenter: data.cassandra.localDataCenter,
        },
      },
      { ...opts, dependsOn: [sidecars[w], ...data.resources] },
    );
  }
  // The edge starts once the backends' sidecars are up (nginx's first request has somewhere to go).
  sidecars[edge] = sidecar(
    edge,
    backends.map((w) => sidecars[w] as LocalSidecar),
  );

  const edgeInbound = Object.values((plan[edge] as WorkloadPorts).inbound)[0];
  if (edgeInbound === undefined) throw new Error(`workloads.${edge}.ports: the edge needs a port`);
  const ingress = new LocalIngress(
    'ingress-nginx',
    {
      model,
      ca: ctx.ca,
      certDir: ctx.pkiDir('ingress-edge'),
      dir: ctx.runDir('nginx'),
      listen: { address: '127.0.0.1', port: ctx.ports.ingressHttps },
      upstream: { address: '127.0.0.1', port: edgeInbound },
      certValidHours: ctx.certValidHours,
      rotation: settings.edgeRotation ?? 0,
    },
    {
      ...opts,
      dependsOn: [sidecars[edge], ...Object.values(services), ...idp.resources],
    },
  );

  return {
    ingressUrl: ingress.url,
    sidecars: Object.fromEntries(
      Object.entries(sidecars).map(([w, s]) => [
        w,
        {
          spiffeId: spiffeId(model, w),
          adminUrl: s.adminUrl,
          inbound: s.inbound,
          certDir: ctx.pkiDir(w),
          logFile: s.envoy.logFile,
        },
      ]),
    ),
    services: Object.fromEntries(
      Object.entries(services).map(([w, s]) => [w, { url: s.url, logFile: s.logFile }]),
    ),
    ingress,
    resources: [ingress, ...Object.values(sidecars), ...Object.values(services)],
  };
}
