/** Clients of a local Kafka node: kafkajs options (TLS from PEM files) and the readiness probe. */
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { readFileSync } from 'node:fs';
import type { ManagedProcess } from './process.ts';
import { splitPem } from './tls.ts';

/** How a Kafka client proves itself: PEM file paths. */
export interface KafkaClientCredentials {
  /** Client certificate (chain) PEM file; a keystore file (key + chain) also works. */
  cert?: string;
  /** Client private key PEM file; defaults to the key found in `cert`. */
  key?: string;
  /** CA PEM file that signs the broker's certificate. */
  ca?: string;
}

/** A running Kafka node in KRaft combined mode (broker + controller), alone or in a cluster. */
export interface KafkaServer {
  /** The address its controller and inter-broker listeners bind. */
  host: string;
  /** `node.id` (1 for a single node). */
  nodeId: number;
  /** The client listener's port. */
  port: number;
  /** `host:port` of the client listener (comma-separated for a cluster), for `brokers: [...]`. */
  bootstrap: string;
  /** The inter-broker and controller listeners' ports. */
  brokerPort: number;
  controllerPort: number;
  clusterId: string;
  tls: boolean;
  version: string;
  /** Milliseconds from spawn to the first successful metadata request (storage format excluded). */
  startupMs: number;
  /** Milliseconds the storage format took (0 when the data dir was already formatted). */
  formatMs: number;
  /** When the process was spawned (epoch ms). */
  startedAt: number;
  dir: string;
  logFile: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** kafkajs config for a client of `server` (SSL from `creds` when the server uses TLS). */
export function kafkaClientConfig(
  server: Pick<KafkaServer, 'bootstrap' | 'tls' | 'host'>,
  creds: KafkaClientCredentials = {},
  clientId = 'trellis',
): KafkaConfig {
  const cfg: KafkaConfig = {
    clientId,
    brokers: server.bootstrap.split(','),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    logLevel: logLevel.NOTHING,
  };
  if (server.tls) {
    const certText = creds.cert ? readFileSync(creds.cert, 'utf8') : '';
    const keyText = creds.key ? readFileSync(creds.key, 'utf8') : certText;
    const certs = splitPem(certText).certs;
    const key = splitPem(keyText).keys[0];
    cfg.ssl = {
      ...(creds.ca ? { ca: [readFileSync(creds.ca, 'utf8')] } : {}),
      ...(certs.length ? { cert: certs.join('') } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: true,
    };
  }
  return cfg;
}

/** One metadata request (admin describeCluster) on a fresh connection; resolves the cluster id. */
export async function probeKafka(
  server: Pick<KafkaServer, 'bootstrap' | 'tls' | 'host'>,
  creds?: KafkaClientCredentials,
): Promise<string> {
  const cfg = kafkaClientConfig(server, creds, 'trellis-probe');
  const admin = new Kafka({ ...cfg, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const d = await admin.describeCluster();
    if (d.brokers.length === 0) throw new Error('metadata lists no broker yet');
    if (d.controller === null || d.controller < 0) throw new Error('no active controller yet');
    return d.clusterId;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
