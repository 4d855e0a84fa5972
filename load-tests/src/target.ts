import { svidFiles } from '@trellis/contracts';
import type { PodLaunch } from '@trellis/local/pods';
import type { ValidModel } from '@trellis/policy';

/**
 * Where a load run sends its requests: the ingress, the token endpoint, and (for the per-hop mesh
 * overhead) the same service through fewer hops, with the Envoy admin endpoints to scrape. The CLI
 * builds it from a stack's outputs ({@link targetFromStackOutputs}) or reads it from a JSON file.
 */

/** An Envoy whose admin `/stats` the run scrapes before and after measuring. */
export interface EnvoyAdmin {
  /** e.g. `ingress`, `orders-api`. */
  name: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The sidecar's pod, when it runs in one: its admin is scraped from inside. @default none */
  pod?: PodLaunch;
}

/** The fewer-hop endpoints of one backend, for the per-hop mesh overhead. */
export interface MeshTarget {
  /** The ingress Envoy's plaintext listener (what nginx forwards to), e.g. `http://127.0.0.1:8600`. */
  ingressUrl?: string;
  /** The backend sidecar's inbound mTLS listener, e.g. `https://127.0.0.1:8602`. */
  sidecarUrl?: string;
  /** The app itself, on loopback, e.g. `http://127.0.0.1:8802`. */
  appUrl?: string;
  /** The client certificate the sidecar accepts (the ingress identity's SVID files). */
  clientCert?: { certFile: string; keyFile: string };
  /** XFCC value the direct path sends in place of the sidecar's (names the ingress identity). */
  xfcc?: string;
  /** Header the sidecar forwards the token payload in. @default x-jwt-payload */
  payloadHeader?: string;
  /**
   * The backend's pod (ADR 0012), when it runs in one: its app listens on the pod's own loopback,
   * so the inner paths (sidecar, direct) run from inside the pod, through the pod launcher.
   * @default none: every path runs from where k6 runs
   */
  pod?: PodLaunch;
}

/** Everything a run needs to know about the system under test. */
export interface LoadTarget {
  /** e.g. `https://localhost:8443` */
  ingressUrl: string;
  /** PEM bundle the ingress certificate chains to. */
  trustBundle?: string;
  /** The OAuth token endpoint. */
  tokenUrl: string;
  /**
   * The token request's form fields (grant type, client, user). Secret: it goes to k6 only through
   * its environment and is never written to the plan or the report.
   */
  tokenForm: Record<string, string>;
  mesh?: MeshTarget;
  envoyAdmins?: EnvoyAdmin[];
}

/** Check a target read from a file or built from outputs; throws naming the bad field. */
export function checkTarget(t: unknown, where = 'target'): LoadTarget {
  const o = record(t, where);
  const url = (k: string, v: unknown, protocols: string[]): string => {
    if (typeof v !== 'string') throw new Error(`${where}.${k}: must be a URL string`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new Error(`${where}.${k}: '${v}' is not a URL`);
    }
    if (!protocols.includes(u.protocol))
      throw new Error(`${where}.${k}: '${v}' must use ${protocols.join(' or ')}`);
    return v.replace(/\/+$/, '');
  };
  const form = record(o.tokenForm, `${where}.tokenForm`);
  for (const [k, v] of Object.entries(form))
    if (typeof v !== 'string') throw new Error(`${where}.tokenForm.${k}: must be a string`);
  if (typeof form.grant_type !== 'string')
    throw new Error(`${where}.tokenForm.grant_type: missing (e.g. password or client_credentials)`);
  const out: LoadTarget = {
    ingressUrl: url('ingressUrl', o.ingressUrl, ['https:', 'http:']),
    tokenUrl: url('tokenUrl', o.tokenUrl, ['https:', 'http:']),
    tokenForm: form as Record<string, string>,
  };
  if (o.trustBundle !== undefined) {
    if (typeof o.trustBundle !== 'string') throw new Error(`${where}.trustBundle: must be a path`);
    out.trustBundle = o.trustBundle;
  }
  if (o.mesh !== undefined) {
    const m = record(o.mesh, `${where}.mesh`);
    const mesh: MeshTarget = {};
    if (m.ingressUrl !== undefined)
      mesh.ingressUrl = url('mesh.ingressUrl', m.ingressUrl, ['http:']);
    if (m.sidecarUrl !== undefined)
      mesh.sidecarUrl = url('mesh.sidecarUrl', m.sidecarUrl, ['https:']);
    if (m.appUrl !== undefined) mesh.appUrl = url('mesh.appUrl', m.appUrl, ['http:']);
    if (m.clientCert !== undefined) {
      const c = record(m.clientCert, `${where}.mesh.clientCert`);
      if (typeof c.certFile !== 'string' || typeof c.keyFile !== 'string')
        throw new Error(`${where}.mesh.clientCert: needs certFile and keyFile paths`);
      mesh.clientCert = { certFile: c.certFile, keyFile: c.keyFile };
    }
    if (m.pod !== undefined) mesh.pod = checkLaunch(m.pod, `${where}.mesh.pod`);
    for (const k of ['xfcc', 'payloadHeader'] as const) {
      const v = m[k];
      if (v === undefined) continue;
      if (typeof v !== 'string') throw new Error(`${where}.mesh.${k}: must be a string`);
      mesh[k] = v;
    }
    out.mesh = mesh;
  }
  if (o.envoyAdmins !== undefined) {
    if (!Array.isArray(o.envoyAdmins)) throw new Error(`${where}.envoyAdmins: must be a list`);
    out.envoyAdmins = o.envoyAdmins.map((e: unknown, i) => {
      const a = record(e, `${where}.envoyAdmins[${i}]`);
      if (typeof a.name !== 'string' || a.name === '')
        throw new Error(`${where}.envoyAdmins[${i}].name: must be a name`);
      return {
        name: a.name,
        url: url(`envoyAdmins[${i}].url`, a.url, ['http:']),
        ...(a.pod !== undefined
          ? { pod: checkLaunch(a.pod, `${where}.envoyAdmins[${i}].pod`) }
          : {}),
      };
    });
  }
  return out;
}

/** A pod launch read from JSON: a namespace name, non-root ids and optional reveal paths. */
function checkLaunch(v: unknown, where: string): PodLaunch {
  const p = record(v, where);
  if (typeof p.netns !== 'string' || !/^trellis\.[a-z0-9.-]+$/.test(p.netns))
    throw new Error(`${where}.netns: must name a Trellis pod namespace (trellis.<stack>.<pod>)`);
  const id = (k: 'uid' | 'gid'): number => {
    const n = p[k];
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0)
      throw new Error(`${where}.${k}: must be a non-root id (an integer above 0)`);
    return n;
  };
  const launch: PodLaunch = { netns: p.netns, uid: id('uid'), gid: id('gid') };
  if (p.reveal !== undefined) {
    if (!Array.isArray(p.reveal) || !p.reveal.every((r) => typeof r === 'string'))
      throw new Error(`${where}.reveal: must be a list of absolute paths`);
    launch.reveal = p.reveal as string[];
  }
  return launch;
}

function record(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`${where}: must be an object`);
  return v as Record<string, unknown>;
}

/** What {@link targetFromStackOutputs} needs besides the outputs. */
export interface StackTargetOptions {
  /** Whose token: a demo user of the local realm (password grant) or an agent. @default 'alice' */
  as?: string;
  /** The model the stack runs: which workload is the edge, and which backend serves the reads. */
  model: ValidModel;
}

/**
 * A target from a local stack's outputs (`pulumi stack output --json --show-secrets`), as
 * infra/local exports them: `ingressUrl`, `trustBundle`, `principals` (the secret token endpoint and
 * credentials that `./trellis token` uses too), and for the per-hop overhead `sidecars` (per workload:
 * `spiffeId`, `adminUrl`, `inbound` ports, `certDir` holding `cert.pem`/`key.pem`) and `services`
 * (per workload: `url`). Without the last two the run measures the routes only, and says so. With
 * `model` (the bound model: where the backend's inbound listener is) and `pods` (the backend's pod
 * launch), a pod backend's inner paths run from inside its pod.
 */
export function targetFromStackOutputs(
  outputs: Record<string, unknown>,
  o: StackTargetOptions,
): LoadTarget {
  const as = o.as ?? 'alice';
  const need = (k: string): unknown => {
    if (outputs[k] === undefined)
      throw new Error(
        `the stack has no output '${k}' (outputs: ${Object.keys(outputs).join(', ') || 'none'}); is it up?`,
      );
    return outputs[k];
  };
  const p = record(need('principals'), 'output principals');
  if (typeof p.tokenUrl !== 'string' || typeof p.cliClientId !== 'string')
    throw new Error('output principals: needs tokenUrl and cliClientId (read with --show-secrets)');
  const users = record(p.users ?? {}, 'output principals.users');
  const agents = record(p.agents ?? {}, 'output principals.agents');
  let tokenForm: Record<string, string>;
  if (typeof users[as] === 'string')
    tokenForm = {
      grant_type: 'password',
      client_id: p.cliClientId,
      username: as,
      password: users[as],
    };
  else if (typeof agents[as] === 'string')
    tokenForm = { grant_type: 'client_credentials', client_id: as, client_secret: agents[as] };
  else
    throw new Error(
      `output principals has no user or agent '${as}' (known: ${[...Object.keys(users), ...Object.keys(agents)].join(', ') || 'none'}); are the secrets shown?`,
    );

  const target: Record<string, unknown> = {
    ingressUrl: need('ingressUrl'),
    trustBundle: need('trustBundle'),
    tokenUrl: p.tokenUrl,
    tokenForm,
  };
  const sidecars = outputs.sidecars as Record<string, Record<string, unknown>> | undefined;
  const services = outputs.services as Record<string, Record<string, unknown>> | undefined;
  const edge = Object.keys(o.model.workloads).find((w) => o.model.workloads[w]?.edge);
  const read = Object.values(o.model.routes).find(
    (r) => r.method === 'GET' && r.budget !== undefined,
  );
  if (sidecars && edge && read) {
    const edgeCar = sidecars[edge];
    const backendCar = sidecars[read.backend];
    const port = (car: Record<string, unknown> | undefined, name: string | undefined) =>
      name !== undefined ? (car?.inbound as Record<string, number> | undefined)?.[name] : undefined;
    const edgePort = port(edgeCar, o.model.workloads[edge]?.ports[0]?.name);
    const backendPort = port(backendCar, read.port);
    const certDir = typeof edgeCar?.certDir === 'string' ? edgeCar.certDir : undefined;
    const appUrl = services?.[read.backend]?.url;
    // A pod backend's inbound listener is on its pod address (the bound model says where).
    const bound = outputs.model as
      | {
          binding?: {
            workloads?: Record<string, { inbound?: Record<string, { address?: unknown }> }>;
          };
        }
      | undefined;
    const boundAt = (w: string, port: string | undefined): string => {
      const a = port !== undefined ? bound?.binding?.workloads?.[w]?.inbound?.[port]?.address : '';
      return typeof a === 'string' && a !== '' ? a : '127.0.0.1';
    };
    const sidecarHost = boundAt(read.backend, read.port);
    // The ingress Envoy's listener, where nginx reaches it. In the ingress pod it is on the pod's
    // own loopback (plaintext from nginx, ADR 0012), out of k6's reach: no ingress path then, and
    // the plan measures the whole ingress pod (nginx and its Envoy) as one hop instead.
    const edgeHost = boundAt(edge, o.model.workloads[edge]?.ports[0]?.name);
    const pods = outputs.pods as Record<string, { launch?: unknown }> | undefined;
    const pod = pods?.[read.backend]?.launch;
    const edgeInPod = pods?.[edge] !== undefined;
    target.mesh = {
      ...(edgePort !== undefined && !edgeInPod
        ? { ingressUrl: `http://${edgeHost}:${edgePort}` }
        : {}),
      ...(backendPort !== undefined && certDir
        ? {
            sidecarUrl: `https://${sidecarHost}:${backendPort}`,
            clientCert: {
              certFile: `${certDir}/${svidFiles.cert}`,
              keyFile: `${certDir}/${svidFiles.key}`,
            },
          }
        : {}),
      ...(typeof appUrl === 'string' ? { appUrl } : {}),
      ...(typeof edgeCar?.spiffeId === 'string' ? { xfcc: `URI=${edgeCar.spiffeId}` } : {}),
      ...(pod !== undefined ? { pod } : {}),
    };
    target.envoyAdmins = Object.entries(sidecars)
      .filter(([, c]) => typeof c.adminUrl === 'string')
      .map(([name, c]) => ({
        name,
        url: c.adminUrl,
        ...(pods?.[name]?.launch !== undefined ? { pod: pods[name].launch } : {}),
      }));
  }
  return checkTarget(target, 'stack outputs');
}
