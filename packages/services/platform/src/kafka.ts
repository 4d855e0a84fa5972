import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import kafkajs from 'kafkajs';
import type { ISocketFactory, KafkaConfig, LogEntry } from 'kafkajs';
import { splitHostPort } from './env.ts';
import { TlsMaterial, type TlsFiles } from './tls.ts';

const { Kafka, logLevel } = kafkajs;

/** How to reach Kafka: directly over SSL with the workload certificate, or via the sidecar. */
export interface KafkaOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Client id the broker logs and quotas see. */
  clientId: string;
  /** Client TLS (SSL listener with client auth). Omit when a sidecar originates TLS. */
  tls?: TlsFiles;
  /**
   * Open every broker connection to this fixed `host:port` (a local proxy), whatever host the
   * cluster metadata advertises. Only meaningful with one broker per proxy port.
   */
  translateTo?: string;
  /** TCP/TLS connect timeout. @default 3000 */
  connectionTimeoutMs?: number;
  /** Timeout of one broker request. @default 10000 */
  requestTimeoutMs?: number;
}

/** A kafkajs client wired to the service's logger, with TLS files re-read for each connection. */
export function createKafka(opts: KafkaOptions, log: FastifyBaseLogger): kafkajs.Kafka {
  const tls = opts.tls ? new TlsMaterial(opts.tls) : undefined;
  const config: KafkaConfig = {
    clientId: opts.clientId,
    brokers: opts.brokers,
    connectionTimeout: opts.connectionTimeoutMs ?? 3_000,
    requestTimeout: opts.requestTimeoutMs ?? 10_000,
    // Short connect retries: the Connector retries whole connects with its own backoff, and
    // readiness should turn true soon after Kafka is reachable.
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => bridge(log, entry),
  };
  if (tls) config.ssl = tls.current();
  if (tls || opts.translateTo) config.socketFactory = socketFactory(tls, opts.translateTo);
  return new Kafka(config);
}

function socketFactory(
  tls: TlsMaterial | undefined,
  translateTo: string | undefined,
): ISocketFactory {
  const fixed = translateTo ? splitHostPort(translateTo) : undefined;
  return ({ host, port, onConnect }) => {
    const target = fixed ?? { host, port };
    let socket;
    if (tls) {
      const material = tls.current();
      const servername = material.servername ?? (isIP(host) ? undefined : host);
      socket = tlsConnect(
        {
          ...material,
          host: target.host,
          port: target.port,
          ...(servername ? { servername } : {}),
        },
        onConnect,
      );
    } else {
      socket = netConnect({ host: target.host, port: target.port }, onConnect);
    }
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}

/**
 * kafkajs logs every failed connection attempt at ERROR, also while it is still retrying; the app logs
 * the outcome itself ("connect failed", "publish failed"), so kafkajs's lines go out as warnings.
 */
function bridge(log: FastifyBaseLogger, entry: LogEntry): void {
  const { message, timestamp: _t, logger: _l, ...extra } = entry.log;
  const fields = { kafkajs: entry.namespace, ...extra };
  if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(fields, message);
  else if (entry.level === logLevel.INFO) log.info(fields, message);
  else log.debug(fields, message);
}
