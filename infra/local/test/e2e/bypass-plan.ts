/**
 * The bypass table (pure): from the stack's bound model, its pods and its ports, every way around
 * a sidecar or a server's client listener that issue 11 closes, each with the same path done right
 * from inside the right pod first (STYLE 13: a dead path must not pass as a refused one).
 *
 * A row exists only where its "right pod" exists: an app, egress listener, admin or key row for each
 * workload that runs as a pod; a Cassandra JMX/storage, Kafka controller or Keycloak management row
 * once that server runs as a pod (pods named `cassandra`, `kafka`, `keycloak`); a Kafka listener row
 * for every client listener (the right place being the listener's workload's pod, or the host for
 * the direct listener and for a workload that is not a pod yet).
 */
import { identityHeaders, svidFiles } from '@trellis/contracts';
import type { BoundModel, LocalPortName } from '@trellis/policy';

/** Where a probe runs: on the host (as root, in the root network namespace) or in a pod as its user. */
export type Vantage = { kind: 'host' } | { kind: 'pod'; pod: string };

/** What a CQL, Kafka or JMX server answers first, to tell a working path from a bare TCP accept. */
export type Handshake = 'cql-options' | 'kafka-api-versions' | 'jrmi';

/** One action of a probe; `ok` in its result means it did what the legitimate caller does. */
export type ProbeAction =
  | {
      kind: 'http';
      url: string;
      method: string;
      headers: Record<string, string>;
      body?: string;
      /** Any HTTP answer is ok (a path through a sidecar to a peer that wants a token). @default 2xx only */
      anyStatus?: boolean;
    }
  /** Connect; with `handshake`, ok only when the server answers it as that protocol does. */
  | { kind: 'tcp'; host: string; port: number; handshake?: Handshake }
  /** Open the file for reading (nothing of it is printed). */
  | { kind: 'read'; file: string }
  /** Produce one record (or only connect, without `topic`), plaintext unless `tls` names files. */
  | {
      kind: 'kafka';
      bootstrap: string;
      topic?: string;
      tls?: { cert: string; key: string; ca: string };
    }
  /** `nodetool status` against this JMX endpoint, without credentials. */
  | { kind: 'nodetool'; host: string; port: number };

/** One probe: an action from a vantage. */
export interface Probe {
  from: Vantage;
  action: ProbeAction;
}

/** One row of the table: a path that works from the right place and from nowhere else. */
export interface BypassRow {
  /** The test's title. */
  title: string;
  /** The path done right: must succeed. */
  works: Probe;
  /** The bypasses: each must fail. */
  refused: Probe[];
  /** The error code each refused probe must end with (the key rows: EACCES). @default any failure */
  refusedCode?: string;
}

/** A pod of the stack as its output has it. */
export interface PodInfo {
  address: string;
  user: string;
}

/** What {@link bypassRows} needs: the stack's outputs, as read by the e2e suite. */
export interface BypassInput {
  model: BoundModel;
  pods: Record<string, PodInfo>;
  ports: Record<LocalPortName, number>;
  /** The files of an identity's SVID (`<stack>/pki/<identity>`). */
  pkiDir: (identity: string) => string;
}

/** The server pods the contract names (pods-contract.md: slots 20–22). */
export const SERVER_PODS = ['cassandra', 'kafka', 'keycloak'] as const;

const LOOPBACK = '127.0.0.1';

const host: Vantage = { kind: 'host' };
const inPod = (pod: string): Vantage => ({ kind: 'pod', pod });

/** Every vantage but `owner`'s pod: the host, and every other pod of the stack. */
function outsiders(i: BypassInput, owner: string | null): Vantage[] {
  return [
    host,
    ...Object.keys(i.pods)
      .filter((p) => p !== owner)
      .sort()
      .map(inPod),
  ];
}

/** The same action from each outsider, at the owner's loopback port and at its pod address. */
function fromOutside(i: BypassInput, owner: string, at: (address: string) => ProbeAction): Probe[] {
  const addresses = [LOOPBACK, i.pods[owner]?.address ?? LOOPBACK];
  return outsiders(i, owner).flatMap((from) =>
    [...new Set(addresses)].map((a) => ({ from, action: at(a) })),
  );
}

/** The forged request: the model's route to this app port (a POST first), else its readiness. */
function forgedRequest(
  model: BoundModel,
  workload: string,
  port: string,
): { method: string; path: string; body?: string; scopes: string[] } {
  const routes = Object.values(model.routes)
    .filter((r) => r.backend === workload && r.port === port && !r.path.includes('{'))
    .sort((a, b) => (a.method === 'POST' ? -1 : b.method === 'POST' ? 1 : 0));
  const r = routes[0];
  if (r === undefined) return { method: 'GET', path: '/readyz', scopes: [] };
  return {
    method: r.method,
    path: r.path,
    // The smoke service's order (load-tests' create-order recipe sends the same shape).
    ...(r.method === 'POST' ? { body: JSON.stringify({ sku: 'bypass-1', quantity: 1 }) } : {}),
    scopes: r.auth?.scopes ?? [],
  };
}

/** Headers a caller forges to pass as a user the sidecar checked, sent by the ingress. */
function forgedHeaders(model: BoundModel, scopes: string[]): Record<string, string> {
  const edge = model.binding.edge?.spiffeId ?? '';
  const payload = { sub: 'mallory-bypass', scope: scopes.join(' '), iss: 'forged' };
  return {
    [identityHeaders.jwtPayload]: Buffer.from(JSON.stringify(payload)).toString('base64url'),
    [identityHeaders.clientCert]: `URI=${edge}`,
    'content-type': 'application/json',
  };
}

function appRows(i: BypassInput, w: string): BypassRow[] {
  const b = i.model.binding.workloads[w];
  return Object.entries(b?.app ?? {}).map(([port, ep]) => {
    const req = forgedRequest(i.model, w, port);
    const action = (address: string): ProbeAction => ({
      kind: 'http',
      url: `http://${address}:${ep.port}${req.path}`,
      method: req.method,
      headers: forgedHeaders(i.model, req.scopes),
      ...(req.body !== undefined ? { body: req.body } : {}),
    });
    return {
      title: `${w}: a forged-identity ${req.method} ${req.path} to its app port ${port} (${ep.port})`,
      works: { from: inPod(w), action: action(ep.address) },
      refused: fromOutside(i, w, action),
    };
  });
}

function egressRows(i: BypassInput, w: string): BypassRow[] {
  const b = i.model.binding.workloads[w];
  return Object.entries(b?.egress ?? {}).flatMap(([service, e]) => {
    if (e.listen === undefined) return [];
    const port = e.listen.port;
    const handshake: Handshake = service === 'cassandra' ? 'cql-options' : 'kafka-api-versions';
    const action = (address: string): ProbeAction => ({
      kind: 'tcp',
      host: address,
      port,
      handshake,
    });
    return [
      {
        title: `${w}: a certificate-less ${service} client on its sidecar's egress (${port})`,
        works: { from: inPod(w), action: action(e.listen.address) },
        refused: fromOutside(i, w, action),
      },
    ];
  });
}

/** A peer egress listener the environment binds for the app (none locally today; Istio has none). */
function peerRows(i: BypassInput, w: string): BypassRow[] {
  const b = i.model.binding.workloads[w];
  return Object.entries(b?.peers ?? {}).flatMap(([peer, e]) => {
    if (e.listen === undefined) return [];
    const port = e.listen.port;
    const action = (address: string): ProbeAction => ({
      kind: 'http',
      url: `http://${address}:${port}/`,
      method: 'GET',
      headers: {},
      anyStatus: true,
    });
    return [
      {
        title: `${w}: a client on its sidecar's egress to ${peer} (${port})`,
        works: { from: inPod(w), action: action(e.listen.address) },
        refused: fromOutside(i, w, action),
      },
    ];
  });
}

function adminRows(i: BypassInput, w: string): BypassRow[] {
  const a = i.model.binding.workloads[w]?.admin;
  if (a === undefined) return [];
  const action = (address: string): ProbeAction => ({
    kind: 'http',
    url: `http://${address}:${a.port}/ready`,
    method: 'GET',
    headers: {},
  });
  return [
    {
      title: `${w}: its Envoy admin interface (${a.port})`,
      works: { from: inPod(w), action: action(a.address) },
      refused: fromOutside(i, w, action),
    },
  ];
}

function keyRows(i: BypassInput, owner: string): BypassRow[] {
  const others = Object.keys(i.pods).filter((p) => p !== owner);
  if (others.length === 0) return []; // no other pod user to be refused
  const svid = i.model.binding.workloads[owner]?.svid;
  const file = svid?.kind === 'files' ? svid.key : `${i.pkiDir(owner)}/${svidFiles.key}`;
  return [
    {
      title: `${owner}: its SVID key, read by another pod's user`,
      works: { from: inPod(owner), action: { kind: 'read', file } },
      refused: others.sort().map((p) => ({ from: inPod(p), action: { kind: 'read', file } })),
      refusedCode: 'EACCES',
    },
  ];
}

/** A server pod's private listeners (pods-contract.md §3): on the pod's own loopback only. */
function serverRows(i: BypassInput): BypassRow[] {
  const rows: BypassRow[] = [];
  const add = (
    server: string,
    what: string,
    port: number,
    works: ProbeAction,
    handshake?: Handshake,
  ) => {
    if (i.pods[server] === undefined) return;
    const action = (address: string): ProbeAction => ({
      kind: 'tcp',
      host: address,
      port,
      ...(handshake ? { handshake } : {}),
    });
    rows.push({
      title: `${server}: ${what} (${port})`,
      works: { from: inPod(server), action: works },
      refused: fromOutside(i, server, action),
    });
  };
  const p = i.ports;
  add(
    'cassandra',
    'JMX, nodetool without credentials',
    p.cassandraJmx,
    { kind: 'nodetool', host: LOOPBACK, port: p.cassandraJmx },
    'jrmi',
  );
  add('cassandra', 'its storage (gossip) port', p.cassandraStorage, {
    kind: 'tcp',
    host: LOOPBACK,
    port: p.cassandraStorage,
  });
  add('kafka', 'its controller listener', p.kafkaController, {
    kind: 'tcp',
    host: LOOPBACK,
    port: p.kafkaController,
  });
  add('keycloak', 'its management port', p.keycloakManagement, {
    kind: 'tcp',
    host: LOOPBACK,
    port: p.keycloakManagement,
  });
  return rows;
}

/**
 * Kafka's client listeners: the direct one and one per client workload. A plaintext produce to
 * each, at every address a host process or a pod can dial it at, is refused; the same produce
 * works through the workload's sidecar from where the workload runs (with mTLS as platform-admin,
 * from the host, for the direct listener).
 */
function kafkaRows(i: BypassInput): BypassRow[] {
  const m = i.model;
  const direct = m.binding.dataServices.kafka?.endpoint;
  if (direct === undefined) return [];
  const addresses = new Set<string>([direct.address]);
  for (const b of Object.values(m.binding.workloads))
    if (b.egress.kafka) addresses.add(b.egress.kafka.upstream.address);
  if (i.pods.kafka) addresses.add(i.pods.kafka.address);
  const plaintext = (port: number): Probe[] =>
    outsiders(i, null).flatMap((from) =>
      [...addresses].sort().map((a) => ({
        from,
        action: { kind: 'kafka', bootstrap: `${a}:${port}`, topic: anyTopic(m) } as ProbeAction,
      })),
    );
  const admin = i.pkiDir('platform-admin');
  const rows: BypassRow[] = [
    {
      title: `kafka: a plaintext produce to its direct client listener (${direct.port})`,
      works: {
        from: host,
        action: {
          kind: 'kafka',
          bootstrap: `${direct.address}:${direct.port}`,
          topic: anyTopic(m),
          tls: {
            cert: `${admin}/${svidFiles.cert}`,
            key: `${admin}/${svidFiles.key}`,
            ca: `${admin}/${svidFiles.bundle}`,
          },
        },
      },
      refused: plaintext(direct.port),
    },
  ];
  for (const w of Object.keys(m.binding.workloads).sort()) {
    const e = m.binding.workloads[w]?.egress.kafka;
    if (e?.listen === undefined) continue;
    const topic = Object.keys(m.kafka?.topics ?? {})
      .sort()
      .find((t) => m.kafka?.topics[t]?.producers.includes(w));
    rows.push({
      title: `kafka: a plaintext produce to ${w}'s client listener (${e.upstream.port})`,
      works: {
        from: i.pods[w] ? inPod(w) : host,
        action: {
          kind: 'kafka',
          bootstrap: `${e.listen.address}:${e.listen.port}`,
          ...(topic !== undefined ? { topic } : {}),
        },
      },
      refused: plaintext(e.upstream.port),
    });
  }
  return rows;
}

function anyTopic(m: BoundModel): string | undefined {
  return Object.keys(m.kafka?.topics ?? {}).sort()[0];
}

/** Every row of the bypass table for this stack, in a stable order. */
export function bypassRows(i: BypassInput): BypassRow[] {
  const workloads = Object.keys(i.model.binding.workloads)
    .filter((w) => i.pods[w] !== undefined)
    .sort();
  return [
    ...workloads.flatMap((w) => appRows(i, w)),
    ...workloads.flatMap((w) => egressRows(i, w)),
    ...workloads.flatMap((w) => peerRows(i, w)),
    ...workloads.flatMap((w) => adminRows(i, w)),
    ...serverRows(i),
    ...kafkaRows(i),
    ...Object.keys(i.pods)
      .sort()
      .flatMap((p) => keyRows(i, p)),
  ];
}
