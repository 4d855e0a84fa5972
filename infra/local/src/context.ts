import { LocalMeshCa } from '@trellis/components/local/pki';
import { LocalPods } from '@trellis/components/local/pods';
import { podAddress, stackSubnet, type PodSubnet } from '@trellis/local/pods';
import {
  bindOrThrow,
  localPaths,
  localPortsAt,
  type BoundModel,
  type LocalEnvironment,
  type LocalPods as LocalPodsEnv,
  type LocalPortName,
  type ValidModel,
} from '@trellis/policy';

/** What every module of the local stack gets: the model, where to write, the ports, the Mesh CA. */
export interface StackContext {
  stack: string;
  region: string;
  /**
   * The model bound to this stack's environment (its Keycloak's issuer, its ports, its SVID
   * files): the one model the data layer, Keycloak and the mesh all use.
   */
  model: BoundModel;
  /** `<repo>/.trellis/<stack>` */
  stackDir: string;
  /** `<stackDir>/run/<component>`: a LocalProcess's directory. */
  runDir(component: string): string;
  /** `<stackDir>/pki/<identity>`: an identity's certificate files. */
  pkiDir(identity: string): string;
  /** The stack's fixed ports (`basePort` + offset). */
  ports: Record<LocalPortName, number>;
  ca: LocalMeshCa;
  certValidHours: number;
  rotation: number;
  /** The stack's pods, when `pods` is on: the resource every pod process depends on. */
  pods?: StackPods;
}

/** The stack's pods: where they are (as bound) and the resource that makes them. */
export interface StackPods {
  subnet: PodSubnet;
  /** Pod name (a workload, or a server of {@link serverPodSlots}) → slot. */
  slots: Record<string, number>;
  resource: LocalPods;
}

/**
 * The workloads that run as pods when the stack's `pods` setting is on: every workload of the
 * model, sorted (the edge's pod holds nginx too, as Istio's ingress gateway pod does).
 */
export function podWorkloads(model: ValidModel): string[] {
  return Object.keys(model.workloads).sort();
}

/**
 * The stack's servers that run as pods of their own, each at a fixed slot above the workloads'
 * (a stack holds 10 workloads at most: slots 0–9), so that a server's address never moves when
 * the model gains a workload. Their client listeners bind the pod address; the rest of each server
 * (JMX, storage port, controller, inter-broker) stays on the pod's own loopback.
 */
export const serverPodSlots = {
  cassandra: 20,
  kafka: 21,
  keycloak: 22,
} as const satisfies Partial<Record<keyof NonNullable<LocalPodsEnv['servers']>, number>>;

/**
 * Where the pods of a stack at `basePort` are (pure): the stack's /24, each pod workload's slot
 * (its position among the model's sorted workload names, as its ports), each server pod's
 * ({@link serverPodSlots}), and their addresses.
 */
export function podPlan(
  model: ValidModel,
  basePort: number,
): { subnet: PodSubnet; slots: Record<string, number>; env: LocalPodsEnv } {
  const subnet = stackSubnet(basePort);
  const sorted = Object.keys(model.workloads).sort();
  const slots: Record<string, number> = {};
  for (const w of podWorkloads(model)) slots[w] = sorted.indexOf(w);
  const addresses = Object.fromEntries(
    Object.entries(slots).map(([w, slot]) => [w, podAddress(subnet, slot)]),
  );
  const servers: NonNullable<LocalPodsEnv['servers']> = {};
  for (const [name, slot] of Object.entries(serverPodSlots)) {
    if (Object.hasOwn(model.workloads, name))
      throw new Error(`workloads.${name}: the name is the stack's ${name} server pod's`);
    slots[name] = slot;
    servers[name as keyof typeof serverPodSlots] = podAddress(subnet, slot);
  }
  return { subnet, slots, env: { hostAddress: subnet.hostAddress, addresses, servers } };
}

/** What {@link localContext} needs: the model as written, the stack's base port and directory. */
export interface ContextInput {
  stack: string;
  region: string;
  model: ValidModel;
  stackDir: string;
  basePort: number;
  certValidHours: number;
  rotation: number;
  /** Run {@link podWorkloads} as pods (ADR 0012; needs root). @default false */
  pods?: boolean;
}

/**
 * The local environment of a stack at `basePort` under `stackDir`: its Keycloak serves on
 * `keycloakHttp` over TLS (`local`: https://localhost:8180); `pods` places the pod workloads.
 */
export function localEnvironment(
  basePort: number,
  stackDir: string,
  pods?: LocalPodsEnv,
): LocalEnvironment {
  const ports = localPortsAt(basePort);
  return {
    kind: 'local',
    basePort,
    stackDir,
    // Keycloak serves TLS only, with a Mesh CA certificate (the one place the scheme is chosen).
    keycloak: { baseUrl: `https://localhost:${ports.keycloakHttp}` },
    ...(pods !== undefined ? { pods } : {}),
  };
}

/**
 * The model bound to the stack's environment, the stack's Mesh CA (resource `mesh-ca`, files under
 * `<stackDir>/pki`) and the context built around them; the local stack and the component tests'
 * fixture programs share it. Throws with every binding error and its path.
 */
export function localContext(o: ContextInput): StackContext {
  const plan = o.pods === true ? podPlan(o.model, o.basePort) : undefined;
  const model = bindOrThrow(
    o.model,
    localEnvironment(o.basePort, o.stackDir, plan?.env),
    `the model does not fit stack ${o.stack}`,
  );
  const paths = localPaths(o.stackDir);
  const ca = new LocalMeshCa('mesh-ca', {
    trustDomain: model.trustDomain,
    region: o.region,
    dir: paths.pki,
  });
  return {
    stack: o.stack,
    region: o.region,
    model,
    stackDir: o.stackDir,
    runDir: paths.runDir,
    pkiDir: paths.pkiDir,
    ports: localPortsAt(o.basePort),
    ca,
    certValidHours: o.certValidHours,
    rotation: o.rotation,
    ...(plan !== undefined
      ? {
          pods: {
            subnet: plan.subnet,
            slots: plan.slots,
            resource: new LocalPods('pods', {
              stack: o.stack,
              subnet: plan.subnet,
              pods: plan.slots,
            }),
          },
        }
      : {}),
  };
}
