/**
 * The stack of an A/B gate run: every arm up side by side, as Chromium's Pinpoint runs two builds on
 * one bot, so that each block loads one arm while the others idle and the machine's drift falls on
 * all of them alike.
 *
 *   k6 ═mTLS═▶ arm's sidecar Envoy (compiled by compileEnvoy) ─▶ arm's orders app (own process)
 *   k6 ═mTLS═▶ floor Envoy: tcp_proxy, the same listener TLS and SVID ─▶ the same app   (the floor)
 *
 * Real Keycloak (realm compiled from the model) issues the token the sidecars verify. k6 talks to the
 * sidecars directly with the ingress's SVID, as the ingress Envoy does: the ingress and nginx hops
 * are the same code for every arm, and would only add their own variance and CPU to each block.
 *
 * An arm is the compiled sidecar plus optional changes: `envoy` edits that arm's bootstrap after
 * compilation (e.g. the HTTP fault filter of the gate's test), `burnUs` makes its app spin that many
 * microseconds per request. The production compiler is never changed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CertificateAuthority,
  ManagedProcess,
  freePorts,
  startEnvoy,
  startKeycloak,
  waitUntil,
  writePemFiles,
  type EnvoyInstance,
  type KeycloakInstance,
} from '@trellis/local/harness';
import { sidecarArtefacts } from '@trellis/components/local/sidecar';
import { bindOrThrow, compileKeycloakRealm, parseModel, spiffeId } from '@trellis/policy';

/** The model the stack compiles its sidecars and realm from. */
export const DEFAULT_MODEL_FILE = resolve(import.meta.dirname, '..', '..', '..', 'trellis.yaml');
const APP = resolve(import.meta.dirname, 'app.ts');
const PAYLOAD_HEADER = 'x-jwt-payload';

/** An Envoy bootstrap, as JSON. */
export type Bootstrap = Record<string, unknown>;

/** One arm: a name and what differs from the compiled sidecar and the plain app. */
export interface ArmSpec {
  /** [A-Za-z0-9_-], unique. */
  name: string;
  /** Edits this arm's compiled sidecar bootstrap (returns the one to run). */
  envoy?: (bootstrap: Bootstrap) => Bootstrap;
  /** CPU microseconds the app spins per request. @default 0 */
  burnUs?: number;
}

/** A running arm. */
export interface RunningArm {
  name: string;
  /** `https://127.0.0.1:<port>`: the sidecar's inbound listener (mTLS). */
  sidecarUrl: string;
  /** `https://127.0.0.1:<port>`: the floor's listener for this arm (mTLS, tcp_proxy to the app). */
  floorUrl: string;
  /** Process ids whose CPU the gate reads, by component. */
  pids: { sidecar: number; app: number };
  /** The sidecar's admin interface (`http://127.0.0.1:<port>`): stats for profiling. */
  sidecarAdminUrl: string;
  /** The sidecar bootstrap the arm runs (after `envoy`). */
  bootstrap: Bootstrap;
  burnUs: number;
}

/** A running gate stack. */
export interface AbStack {
  arms: RunningArm[];
  /** The floor Envoy's pid (shared by every arm, not judged). */
  floorPid: number;
  tokenUrl: string;
  /** The token request form (a password grant for a user the realm was compiled with). */
  tokenForm: Record<string, string>;
  /** Trusts Keycloak's certificate. */
  trustBundle: string;
  /** The ingress's SVID: what k6 presents to the sidecars and the floor. */
  clientCert: { certFile: string; keyFile: string };
  payloadHeader: string;
  /** The token form's password, so tests can check it never reaches a report. */
  readonly password: string;
  stop(): Promise<void>;
}

const ARM_NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Checks the arm list; names the field at fault. */
export function checkArms(arms: readonly ArmSpec[]): void {
  if (arms.length < 2) throw new Error('arms: an A/B run needs at least two arms');
  const seen = new Set<string>();
  arms.forEach((a, i) => {
    if (!ARM_NAME.test(a.name))
      throw new Error(`arms[${i}].name: '${a.name}' must be 1–32 of [A-Za-z0-9_-]`);
    if (seen.has(a.name)) throw new Error(`arms[${i}].name: '${a.name}' is named twice`);
    seen.add(a.name);
    if (a.burnUs !== undefined && !(Number.isFinite(a.burnUs) && a.burnUs >= 0))
      throw new Error(`arms[${i}].burnUs: ${a.burnUs} must be microseconds, zero or more`);
  });
}

interface Listener {
  name: string;
  filter_chains: {
    transport_socket?: { typed_config: Record<string, unknown> };
    filters: { name: string; typed_config: Record<string, unknown> }[];
  }[];
}

function staticResources(b: Bootstrap): {
  listeners: Listener[];
  clusters: Record<string, unknown>[];
} {
  return b.static_resources as { listeners: Listener[]; clusters: Record<string, unknown>[] };
}

/** The compiled sidecar's inbound HTTP listener (the one the gate measures). */
export function inboundHttpListener(b: Bootstrap): Listener {
  const l = staticResources(b).listeners.find((x) => x.name === 'inbound_http');
  if (!l) throw new Error('bootstrap: the sidecar has no inbound_http listener');
  return l;
}

/**
 * The injected latency regression: Envoy's HTTP fault filter (envoy.filters.http.fault, HTTPFault)
 * delaying every request by `ms` (fixed_delay, percentage 100/HUNDRED), inserted before the router
 * of the sidecar's inbound HTTP listener. Returns a copy.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter
 */
export function withFaultDelay(bootstrap: Bootstrap, ms: number): Bootstrap {
  if (!(Number.isFinite(ms) && ms > 0)) throw new Error(`delay: ${ms} ms must be above zero`);
  const b = structuredClone(bootstrap);
  const hcm = inboundHttpListener(b).filter_chains[0]?.filters.find(
    (f) => f.name === 'envoy.filters.network.http_connection_manager',
  );
  const filters = hcm?.typed_config.http_filters as { name: string }[] | undefined;
  const router = filters?.findIndex((f) => f.name === 'envoy.filters.http.router') ?? -1;
  if (!filters || router < 0) throw new Error('bootstrap: inbound_http has no router filter');
  filters.splice(router, 0, {
    name: 'envoy.filters.http.fault',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: {
        fixed_delay: `${ms / 1000}s`,
        percentage: { numerator: 100, denominator: 'HUNDRED' },
      },
    },
  } as { name: string });
  return b;
}

/**
 * The floor: one Envoy with, per arm, a listener that has the arm's sidecar's own downstream TLS
 * (same SVID over SDS, same client-certificate requirement and SAN match) but only a TCP proxy
 * (envoy.filters.network.tcp_proxy) to the same app. ALPN is left out, as the compiler does for a
 * TCP port: the bytes are HTTP/1.1 whatever the client would have negotiated.
 */
export function floorBootstrap(
  arms: readonly { name: string; bootstrap: Bootstrap; floorPort: number; appPort: number }[],
): Bootstrap {
  const listeners = arms.map((a) => {
    const tls = structuredClone(
      inboundHttpListener(a.bootstrap).filter_chains[0]?.transport_socket,
    );
    if (!tls) throw new Error(`arms.${a.name}: inbound_http has no TLS transport socket`);
    const ctx = tls.typed_config.common_tls_context as Record<string, unknown>;
    delete ctx.alpn_protocols;
    return {
      name: `floor_${a.name}`,
      address: { socket_address: { address: '127.0.0.1', port_value: a.floorPort } },
      filter_chains: [
        {
          transport_socket: tls,
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: {
                '@type':
                  'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                stat_prefix: `floor_${a.name}`,
                cluster: `app_${a.name}`,
              },
            },
          ],
        },
      ],
    };
  });
  const clusters = arms.map((a) => ({
    name: `app_${a.name}`,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: {
      cluster_name: `app_${a.name}`,
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: {
                address: { socket_address: { address: '127.0.0.1', port_value: a.appPort } },
              },
            },
          ],
        },
      ],
    },
  }));
  const node = (arms[0]?.bootstrap.node ?? {}) as Record<string, unknown>;
  return { node: { ...node, id: 'gate-floor' }, static_resources: { listeners, clusters } };
}

function writeSds(files: Record<string, unknown>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify(content));
  }
}

async function startApp(
  dir: string,
  name: string,
  port: number,
  burnUs: number,
): Promise<ManagedProcess> {
  mkdirSync(dir, { recursive: true });
  const p = ManagedProcess.start({
    name: `app-${name}`,
    command: process.execPath,
    args: [APP, String(port), String(burnUs), PAYLOAD_HEADER],
    dir,
    stopGraceMs: 3_000,
  });
  try {
    await waitUntil(
      () => Promise.resolve(readFileSync(p.logFile, 'utf8').includes(`listening ${port}`)),
      { timeoutMs: 20_000, what: `app ${name} listening on ${port}`, proc: p },
    );
  } catch (err) {
    await p.stop();
    throw err;
  }
  return p;
}

/** Start every arm under `root`. Everything started is stopped by `stop()`, also on failure. */
export async function startAbStack(
  root: string,
  specs: readonly ArmSpec[],
  o: {
    modelFile?: string;
    /**
     * Compile every arm's sidecar with its access log (a file in the arm's dir), as the stack runs
     * it. @default false: no access log, as the gate's CI test has always measured
     */
    accessLog?: boolean;
  } = {},
): Promise<AbStack> {
  checkArms(specs);
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    stops.length = 0;
  };
  try {
    const text = readFileSync(o.modelFile ?? DEFAULT_MODEL_FILE, 'utf8');
    const base = parseModel(text);
    if (!base.ok) throw new Error(`${o.modelFile ?? DEFAULT_MODEL_FILE} is invalid`);
    const password = randomBytes(18).toString('base64url');
    const realm = compileKeycloakRealm(
      bindOrThrow(base.model, { kind: 'example', baseDir: '/srv' }, 'example plan'),
      {
        users: [{ username: 'loader', password, roles: ['order-writer'] }],
        accessTokenLifespan: 900,
      },
    );
    const rootCa = await CertificateAuthority.create({ commonName: 'gate root', validDays: 1 });
    const ca = await rootCa.intermediate({ commonName: 'gate local', validDays: 1 });
    const pki = join(root, 'pki');
    mkdirSync(pki, { recursive: true });
    const rootFile = join(pki, 'root.pem');
    writeFileSync(rootFile, ca.rootPem);
    const kcFiles = await writePemFiles(
      join(pki, 'keycloak'),
      'keycloak',
      await ca.issue({
        commonName: 'localhost',
        dns: ['localhost'],
        ips: ['127.0.0.1'],
        validDays: 1,
      }),
      ca.rootPem,
    );

    // Keycloak is the slow part: the apps start meanwhile.
    const ports = await freePorts(specs.length * 3);
    const portOf = (i: number, k: 0 | 1 | 2): number => ports[i * 3 + k] as number;
    const kcPromise: Promise<KeycloakInstance> = startKeycloak({
      dir: join(root, 'keycloak'),
      realm: realm as unknown as { realm: string },
      tls: { certFile: kcFiles.cert, keyFile: kcFiles.key, caFile: rootFile },
      hostname: (port) => `https://localhost:${port}`,
    });
    // Registered at once, so that a failure below also stops a Keycloak still starting.
    stops.push(async () => (await kcPromise).stop());
    const apps: ManagedProcess[] = [];
    for (const [i, s] of specs.entries()) {
      const p = await startApp(join(root, 'app', s.name), s.name, portOf(i, 0), s.burnUs ?? 0);
      apps.push(p);
      stops.push(() => p.stop());
    }
    const kc = await kcPromise;
    const parsed = parseModel(
      text.split(base.model.identityProviders.keycloak?.issuer ?? '').join(kc.issuer),
    );
    if (!parsed.ok) throw new Error('rewritten model is invalid');
    const model = bindOrThrow(parsed.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
    const svid = async (w: string) =>
      writePemFiles(
        join(pki, w),
        w,
        await ca.issue({ uris: [spiffeId(model, w)], validDays: 1 }),
        ca.rootPem,
      );
    const ingressId = await svid('ingress');
    const apiId = await svid('orders-api');
    const [dummy] = (await freePorts(1)) as [number];

    const arms: RunningArm[] = [];
    const floorArms: { name: string; bootstrap: Bootstrap; floorPort: number; appPort: number }[] =
      [];
    for (const [i, s] of specs.entries()) {
      const compiled = sidecarArtefacts(
        model,
        {
          workload: 'orders-api',
          inbound: { http: portOf(i, 1) },
          app: { http: { address: '127.0.0.1', port: portOf(i, 0) } },
          // No data stores: the clusters exist, nothing dials them.
          outbound: {
            cassandra: { address: '127.0.0.1', port: dummy },
            kafka: { address: '127.0.0.1', port: dummy },
          },
          jwks: {
            keycloak: {
              address: '127.0.0.1',
              port: Number(new URL(kc.baseUrl).port),
              caFile: rootFile,
            },
          },
          payloadHeader: PAYLOAD_HEADER,
          ...(o.accessLog === true ? { accessLog: 'access.log' } : {}),
        },
        join(root, 'envoy', s.name),
        { cert: apiId.cert, key: apiId.key, bundle: apiId.truststore },
      );
      writeSds(compiled.sdsFiles);
      const bootstrap = s.envoy
        ? s.envoy(compiled.bootstrap as unknown as Bootstrap)
        : (compiled.bootstrap as unknown as Bootstrap);
      const e: EnvoyInstance = await startEnvoy({
        dir: join(root, 'envoy', s.name, 'run'),
        name: `sidecar-${s.name}`,
        config: bootstrap,
      });
      stops.push(() => e.stop());
      arms.push({
        name: s.name,
        sidecarUrl: `https://127.0.0.1:${portOf(i, 1)}`,
        floorUrl: `https://127.0.0.1:${portOf(i, 2)}`,
        pids: { sidecar: e.process.pid, app: (apps[i] as ManagedProcess).pid },
        sidecarAdminUrl: e.adminUrl,
        bootstrap,
        burnUs: s.burnUs ?? 0,
      });
      floorArms.push({
        name: s.name,
        bootstrap: compiled.bootstrap as unknown as Bootstrap,
        floorPort: portOf(i, 2),
        appPort: portOf(i, 0),
      });
    }
    const floor = await startEnvoy({
      dir: join(root, 'envoy', 'floor'),
      name: 'floor',
      config: floorBootstrap(floorArms),
    });
    stops.push(() => floor.stop());
    return {
      arms,
      floorPid: floor.process.pid,
      tokenUrl: `${kc.issuer}/protocol/openid-connect/token`,
      tokenForm: { grant_type: 'password', client_id: 'trellis-cli', username: 'loader', password },
      trustBundle: rootFile,
      clientCert: { certFile: ingressId.cert, keyFile: ingressId.key },
      payloadHeader: PAYLOAD_HEADER,
      password,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
