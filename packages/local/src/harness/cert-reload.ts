/**
 * Renew a running data server's own certificate without restarting it
 * (docs/adr/0029-data-layer-certificate-reload.md): replace its PEM files, then call
 * {@link reloadKafkaCertificates} (dynamic listener reconfiguration, KIP-226) or
 * {@link reloadCassandraCertificates} (`nodetool reloadssl`). Both then check, by fresh TLS
 * handshakes, that the server presents the certificate now in its keystore file.
 */
import kafkajs, { type Admin } from 'kafkajs';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { PodLaunch } from '../pods/launch.ts';
import { nodetool, type CassandraServer } from './cassandra-client.ts';
import {
  kafkaClientConfig,
  type KafkaClientCredentials,
  type KafkaServer,
} from './kafka-client.ts';
import { splitPem } from './tls.ts';

// Not named imports: kafkajs is CommonJS, and Node's ESM loader (the Pulumi program host) finds no
// named export `ConfigResourceTypes` in it.
const { ConfigResourceTypes, ConfigSource, Kafka } = kafkajs;

/** A TLS endpoint to check: what the server presents there. */
export interface TlsEndpoint {
  host: string;
  port: number;
  /** For messages, e.g. `CLIENT` or `native`. */
  name?: string;
}

/** The certificate a server presented in one handshake. */
export interface ServedCertificate {
  /** Upper-case hex, without leading zeros. */
  serial: string;
  /** ISO 8601. */
  notAfter: string;
  fingerprint256: string;
}

/** PEM file paths a checking client presents (servers here require a client certificate). */
export interface TlsClientFiles {
  /** Certificate chain PEM; a keystore file (key + chain) also works. */
  cert?: string;
  /** Private key PEM; defaults to the key found in `cert`. */
  key?: string;
  /** CA bundle that signs the server's certificate. */
  ca?: string;
}

/** What a reload did: how long until every endpoint served the new certificate, and what they serve. */
export interface CertReloadResult {
  /** The certificate now in the keystore file (and served at every endpoint). */
  expected: ServedCertificate;
  /** Milliseconds from the trigger until every endpoint served `expected`. */
  ms: number;
  served: { endpoint: string; certificate: ServedCertificate }[];
}

function normSerial(s: string): string {
  return s.toUpperCase().replace(/^0+(?=.)/, '');
}

/** The leaf (first certificate) of a PEM keystore or certificate file. */
export function keystoreLeaf(path: string, who: string): ServedCertificate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${who}: cannot read keystore ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const leaf = splitPem(text).certs[0];
  if (!leaf) throw new Error(`${who}: keystore ${path} holds no certificate`);
  const c = new X509Certificate(leaf);
  return {
    serial: normSerial(c.serialNumber),
    notAfter: new Date(c.validTo).toISOString(),
    fingerprint256: c.fingerprint256,
  };
}

/**
 * One fresh TLS handshake with `ep` (verifying the server against `client.ca` and its address):
 * the certificate it presents. Closes the connection at once.
 */
export function servedCertificate(
  ep: TlsEndpoint,
  client: TlsClientFiles,
  timeoutMs = 5_000,
): Promise<ServedCertificate> {
  const certText = client.cert ? readFileSync(client.cert, 'utf8') : '';
  const keyText = client.key ? readFileSync(client.key, 'utf8') : certText;
  const certs = splitPem(certText).certs;
  const key = splitPem(keyText).keys[0];
  const where = `${ep.name ? `${ep.name} ` : ''}${ep.host}:${ep.port}`;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: ep.host,
      port: ep.port,
      ...(client.ca ? { ca: [readFileSync(client.ca, 'utf8')] } : {}),
      ...(certs.length ? { cert: certs.join('') } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: true,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake with ${where}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const p = socket.getPeerCertificate();
      socket.destroy();
      resolve({
        serial: normSerial(p.serialNumber),
        notAfter: new Date(p.valid_to).toISOString(),
        fingerprint256: p.fingerprint256,
      });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`TLS handshake with ${where}: ${err.message}`, { cause: err }));
    });
  });
}

/**
 * Poll every endpoint until each presents `expected` (by serial); throws naming the first endpoint
 * that still serves something else, and what it serves, with `hint`.
 */
async function waitServed(
  who: string,
  endpoints: readonly TlsEndpoint[],
  client: TlsClientFiles,
  expected: ServedCertificate,
  timeoutMs: number,
  hint: string,
): Promise<CertReloadResult['served']> {
  const deadline = Date.now() + timeoutMs;
  const served: CertReloadResult['served'] = [];
  for (const ep of endpoints) {
    const where = `${ep.name ? `${ep.name} ` : ''}${ep.host}:${ep.port}`;
    for (;;) {
      let last: string;
      try {
        const got = await servedCertificate(ep, client);
        if (got.serial === expected.serial) {
          served.push({ endpoint: where, certificate: got });
          break;
        }
        last = `serial ${got.serial} (notAfter ${got.notAfter})`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${who}: ${where} still presents ${last} after ${timeoutMs} ms, expected serial ` +
            `${expected.serial} (notAfter ${expected.notAfter}); ${hint}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return served;
}

/** Options of {@link reloadKafkaCertificates}. */
export interface KafkaCertReloadOptions {
  /**
   * Who asks: a client allowed to alter the broker's configuration (`ALTER_CONFIGS` on the
   * cluster; platform-admin, a super user, in a stack). Also the client of the handshake checks.
   */
  client: KafkaClientCredentials;
  /** The broker's PEM keystore (`ssl.keystore.location`), already replaced with the new key and chain. */
  keystore: string;
  /** Its PEM truststore, when that was replaced too (a new CA bundle). */
  truststore?: string;
  /** The broker's `node.id`. @default 1 (the harness's single node) */
  nodeId?: number;
  /** Listeners to reconfigure. @default ['CLIENT', 'BROKER', 'CONTROLLER'] */
  listeners?: readonly string[];
  /** Endpoints that must present the new certificate. @default the server's client, broker and controller ports */
  verify?: readonly TlsEndpoint[];
  /** @default 30_000 */
  timeoutMs?: number;
}

const LISTENER_NAME = /^[A-Z][A-Z0-9_]*$/;

/**
 * The per-broker entries that make a broker reload its key material from unchanged paths
 * (`listener.name.<listener>.ssl.keystore.location`, and the truststore's when given): Kafka
 * reloads a listener's keystore or truststore file when it was modified, even when the alter
 * re-sets the same path (DynamicBrokerConfig `reloadUpdatedFilesWithoutConfigChange`; in KRaft
 * the controller records a BROKER config even when its value is unchanged, KAFKA-14136).
 */
export function kafkaReloadEntries(
  opts: Pick<KafkaCertReloadOptions, 'keystore' | 'truststore' | 'listeners'>,
): { name: string; value: string }[] {
  const listeners = opts.listeners ?? ['CLIENT', 'BROKER', 'CONTROLLER'];
  if (listeners.length === 0)
    throw new Error('reloadKafkaCertificates: listeners must name at least one listener');
  const out: { name: string; value: string }[] = [];
  for (const l of listeners) {
    if (!LISTENER_NAME.test(l))
      throw new Error(
        `reloadKafkaCertificates: listeners: ${JSON.stringify(l)} must match [A-Z][A-Z0-9_]*`,
      );
    // ListenerName.configPrefix: `listener.name.` + the name in lower case.
    const prefix = `listener.name.${l.toLowerCase()}.`;
    out.push({ name: `${prefix}ssl.keystore.location`, value: opts.keystore });
    if (opts.truststore !== undefined)
      out.push({ name: `${prefix}ssl.truststore.location`, value: opts.truststore });
  }
  return out;
}

async function dynamicBrokerConfigs(admin: Admin, nodeId: number): Promise<string[]> {
  const d = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.BROKER, name: String(nodeId) }],
    includeSynonyms: false,
  });
  return (d.resources[0]?.configEntries ?? [])
    .filter((e) => e.configSource === ConfigSource.DYNAMIC_BROKER_CONFIG)
    .map((e) => e.configName);
}

async function alterBroker(
  admin: Admin,
  nodeId: number,
  configEntries: { name: string; value: string }[],
): Promise<void> {
  const r = await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.BROKER, name: String(nodeId), configEntries }],
  });
  for (const res of r.resources)
    if (res.errorCode !== 0)
      throw new Error(
        `reloadKafkaCertificates: broker ${nodeId} refused the alter (error ${res.errorCode}): ${res.errorMessage ?? ''}`,
      );
}

/**
 * Make a running broker present the certificate now in `opts.keystore` on its listeners, without a
 * restart (KIP-226): re-set each listener's `ssl.keystore.location` to the same path for this
 * broker, wait until a fresh handshake on every `verify` endpoint presents the keystore's leaf,
 * then remove those per-broker overrides again, so that server.properties stays what decides.
 * Connections already open keep their session; new ones get the new certificate.
 *
 * Uses the AlterConfigs request (kafkajs has no IncrementalAlterConfigs), which replaces all of a
 * broker's dynamic per-broker configs: it refuses to run when the broker has any besides these.
 */
export async function reloadKafkaCertificates(
  server: Pick<KafkaServer, 'bootstrap' | 'tls' | 'host' | 'port'> &
    Partial<Pick<KafkaServer, 'brokerPort' | 'controllerPort'>>,
  opts: KafkaCertReloadOptions,
): Promise<CertReloadResult> {
  const who = 'reloadKafkaCertificates';
  if (!server.tls) throw new Error(`${who}: Kafka on ${server.bootstrap} does not use TLS`);
  const nodeId = opts.nodeId ?? 1;
  if (!Number.isInteger(nodeId) || nodeId < 0)
    throw new Error(`${who}: nodeId must be a non-negative integer, got ${nodeId}`);
  const entries = kafkaReloadEntries(opts);
  const expected = keystoreLeaf(opts.keystore, who);
  const verify = opts.verify ?? [
    { name: 'CLIENT', host: server.host, port: server.port },
    ...(server.brokerPort !== undefined
      ? [{ name: 'BROKER', host: server.host, port: server.brokerPort }]
      : []),
    ...(server.controllerPort !== undefined
      ? [{ name: 'CONTROLLER', host: server.host, port: server.controllerPort }]
      : []),
  ];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const cfg = kafkaClientConfig(server, opts.client, 'trellis-cert-reload');
  const admin = new Kafka({ ...cfg, retry: { retries: 2 } }).admin();
  await admin.connect();
  try {
    const ours = new Set(entries.map((e) => e.name));
    const others = (await dynamicBrokerConfigs(admin, nodeId)).filter((n) => !ours.has(n));
    if (others.length > 0)
      throw new Error(
        `${who}: broker ${nodeId} has dynamic per-broker configs (${others.join(', ')}) that an ` +
          'AlterConfigs request would remove; reload with kafka-configs (incremental) instead',
      );
    const t0 = Date.now();
    await alterBroker(admin, nodeId, entries);
    const served = await waitServed(
      who,
      verify,
      opts.client,
      expected,
      timeoutMs,
      `the broker logs why in its log ("Reconfiguring" or "Failed to reconfigure")`,
    );
    const ms = Date.now() - t0;
    // Back to server.properties alone: a later restart reads the static paths again. The broker
    // applies the removal when the metadata record reaches it: wait for that, so it holds on return.
    await alterBroker(admin, nodeId, []);
    const clearBy = Date.now() + timeoutMs;
    for (;;) {
      const left = (await dynamicBrokerConfigs(admin, nodeId)).filter((n) => ours.has(n));
      if (left.length === 0) break;
      if (Date.now() > clearBy)
        throw new Error(
          `${who}: broker ${nodeId} still has the per-broker overrides ${left.join(', ')} ` +
            `${timeoutMs} ms after their removal`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    return { expected, ms, served };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Options of {@link reloadCassandraCertificates}. */
export interface CassandraCertReloadOptions {
  /** The node's PEM keystore (`keystore` of its encryption options), already replaced. */
  keystore: string;
  /** The client of the handshake checks (its certificate, as the node requires one). */
  client: TlsClientFiles;
  /** Endpoints that must present the new certificate. @default the native transport */
  verify?: readonly TlsEndpoint[];
  /** Run nodetool inside this pod, as its user (where a pod's JMX is reachable). */
  pod?: PodLaunch;
  /** @default 30_000 */
  timeoutMs?: number;
}

/**
 * Make a running Cassandra node present the certificate now in `opts.keystore`, without a restart:
 * `nodetool reloadssl` (SSLFactory.forceCheckCertFiles: re-validates the files of every cached
 * SSL context, the native transport's and internode's, and drops them, so new connections get
 * contexts built from the new files), then a fresh handshake on every `verify` endpoint must
 * present the keystore's leaf. Connections already open keep their session. Without this call the
 * node notices modified files by itself only every 10 minutes (SSLFactory's fixed 600 s check).
 */
export async function reloadCassandraCertificates(
  server: Pick<
    CassandraServer,
    'host' | 'jmxPort' | 'dir' | 'nativePort' | 'tls' | 'logFile' | 'contactPoint'
  >,
  opts: CassandraCertReloadOptions,
): Promise<CertReloadResult> {
  const who = 'reloadCassandraCertificates';
  if (!server.tls)
    throw new Error(`${who}: Cassandra on ${server.contactPoint} does not use client TLS`);
  const expected = keystoreLeaf(opts.keystore, who);
  const verify = opts.verify ?? [{ name: 'native', host: server.host, port: server.nativePort }];
  const t0 = Date.now();
  await nodetool(server, ['reloadssl'], opts.pod ? { pod: opts.pod } : {});
  const served = await waitServed(
    who,
    verify,
    opts.client,
    expected,
    opts.timeoutMs ?? 30_000,
    `Cassandra logs "Failed to hot reload the SSL Certificates" in ${server.logFile} when it cannot use the new files`,
  );
  return { expected, ms: Date.now() - t0, served };
}
