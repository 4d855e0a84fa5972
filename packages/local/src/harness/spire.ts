/**
 * SPIRE as a real pair of processes: spire-server (SQLite datastore, in-memory keys, join-token node
 * attestation, an UpstreamAuthority "disk" holding an intermediate of ours, so Pulumi keeps owning the root
 * and intermediates) and spire-agent (join token, in-memory keys, the "unix" workload attestor, which gives
 * `unix:uid:<uid>` selectors). Every key below is in SPIRE v1.13.3's own reference (doc/spire_server.md,
 * doc/spire_agent.md, doc/plugin_server_upstreamauthority_disk.md, doc/plugin_server_datastore_sql.md,
 * doc/plugin_agent_workloadattestor_unix.md). ADR 0030 says what this is for.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../toolchain/exec.ts';
import { spireBinary } from '../toolchain/spire.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

/** The upstream CA files SPIRE's `disk` UpstreamAuthority reads (re-read on every CA mint). */
export interface UpstreamFiles {
  /** The intermediate's certificate, then any CAs between it and the root. */
  certPath: string;
  /** The intermediate's private key (PKCS#8 or SEC1 EC, one PEM block). */
  keyPath: string;
  /** The root(s): what every party trusts; SPIRE serves it as the trust domain's bundle. */
  bundlePath: string;
}

export interface SpireServerOptions {
  /** The server's own directory: config, data, socket, log. */
  dir: string;
  trustDomain: string;
  /** TCP port for agents on 127.0.0.1. */
  port: number;
  upstream: UpstreamFiles;
  /** `ca_ttl`: SPIRE's own signing CA, minted under the upstream intermediate. @default '1h' */
  caTtl?: string;
  /** `default_x509_svid_ttl`. @default '1h' */
  defaultX509SvidTtl?: string;
  /** @default 'INFO' */
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export interface SpireAgentOptions {
  /** The agent's own directory: config, data, log. The Workload API socket goes in `<dir>/public`. */
  dir: string;
  trustDomain: string;
  serverPort: number;
  /** PEM roots the agent trusts when it first dials the server (the upstream bundle). */
  trustBundlePath: string;
  /** One-time join token from `spire-server token generate`; written to a 0600 config, never logged. */
  joinToken: string;
  /** @default 'INFO' */
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

const defaults = {
  caTtl: '1h',
  defaultX509SvidTtl: '1h',
  logLevel: 'INFO',
} as const;

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const DURATION = /^[1-9][0-9]*(s|m|h)$/;

function checkTrustDomain(field: string, v: string): void {
  if (!TRUST_DOMAIN.test(v))
    throw new Error(
      `${field} must be a SPIFFE trust domain ([a-z0-9._-]), got ${JSON.stringify(v)}`,
    );
}

function checkPort(field: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 65535)
    throw new Error(`${field} must be a TCP port (1-65535), got ${v}`);
}

function checkDuration(field: string, v: string): void {
  if (!DURATION.test(v))
    throw new Error(`${field} must be a duration like 90s, 2m or 1h, got ${JSON.stringify(v)}`);
}

/** An HCL string literal (HCL's escapes are JSON's for the characters we write). */
function q(v: string): string {
  return JSON.stringify(v);
}

/** Paths of the server's files under `dir`. */
export function spireServerPaths(dir: string): { config: string; data: string; socket: string } {
  return {
    config: join(dir, 'server.conf'),
    data: join(dir, 'data'),
    socket: join(dir, 'api.sock'),
  };
}

/** Paths of the agent's files under `dir`; the Workload API socket's directory is world-traversable. */
export function spireAgentPaths(dir: string): { config: string; data: string; socket: string } {
  return {
    config: join(dir, 'agent.conf'),
    data: join(dir, 'data'),
    socket: join(dir, 'public', 'api.sock'),
  };
}

/** server.conf (HCL) for {@link SpireServerOptions}; throws naming the field on a bad value. */
export function spireServerConfig(o: SpireServerOptions): string {
  checkTrustDomain('trustDomain', o.trustDomain);
  checkPort('port', o.port);
  const caTtl = o.caTtl ?? defaults.caTtl;
  const svidTtl = o.defaultX509SvidTtl ?? defaults.defaultX509SvidTtl;
  checkDuration('caTtl', caTtl);
  checkDuration('defaultX509SvidTtl', svidTtl);
  for (const f of ['certPath', 'keyPath', 'bundlePath'] as const)
    if (!o.upstream[f].startsWith('/'))
      throw new Error(
        `upstream.${f} must be an absolute path, got ${JSON.stringify(o.upstream[f])}`,
      );
  const p = spireServerPaths(o.dir);
  return `server {
  bind_address = "127.0.0.1"
  bind_port = ${q(String(o.port))}
  socket_path = ${q(p.socket)}
  trust_domain = ${q(o.trustDomain)}
  data_dir = ${q(p.data)}
  log_level = ${q(o.logLevel ?? defaults.logLevel)}
  ca_ttl = ${q(caTtl)}
  default_x509_svid_ttl = ${q(svidTtl)}
}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = ${q(join(p.data, 'datastore.sqlite3'))}
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  UpstreamAuthority "disk" {
    plugin_data {
      cert_file_path = ${q(o.upstream.certPath)}
      key_file_path = ${q(o.upstream.keyPath)}
      bundle_file_path = ${q(o.upstream.bundlePath)}
    }
  }
}
`;
}

/** agent.conf (HCL) for {@link SpireAgentOptions}; throws naming the field on a bad value. */
export function spireAgentConfig(o: SpireAgentOptions): string {
  checkTrustDomain('trustDomain', o.trustDomain);
  checkPort('serverPort', o.serverPort);
  if (!/^[A-Za-z0-9-]{8,128}$/.test(o.joinToken))
    throw new Error('joinToken must be the token `spire-server token generate` printed');
  if (!o.trustBundlePath.startsWith('/'))
    throw new Error(
      `trustBundlePath must be an absolute path, got ${JSON.stringify(o.trustBundlePath)}`,
    );
  const p = spireAgentPaths(o.dir);
  return `agent {
  data_dir = ${q(p.data)}
  log_level = ${q(o.logLevel ?? defaults.logLevel)}
  server_address = "127.0.0.1"
  server_port = ${q(String(o.serverPort))}
  socket_path = ${q(p.socket)}
  trust_bundle_path = ${q(o.trustBundlePath)}
  trust_domain = ${q(o.trustDomain)}
  join_token = ${q(o.joinToken)}
}

plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`;
}

/** A running spire-server and its admin CLI over the local API socket. */
export interface SpireServer {
  readonly process: ManagedProcess;
  /** The agents' port on 127.0.0.1. */
  readonly port: number;
  readonly socketPath: string;
  /** `spire-server <command> -socketPath <socket> <args>`; resolves its output. */
  cli(command: readonly string[], args: readonly string[]): Promise<string>;
  /** A one-time join token for an agent whose SPIFFE ID is `spiffeId`. Not logged. */
  joinToken(spiffeId: string, ttlSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

/** A running spire-agent. */
export interface SpireAgent {
  readonly process: ManagedProcess;
  /** The Workload API (and Envoy SDS) socket, mode 0777 in a 0755 directory. */
  readonly socketPath: string;
  stop(): Promise<void>;
}

/** Start spire-server with {@link spireServerConfig} and wait until its healthcheck passes. */
export async function startSpireServer(o: SpireServerOptions): Promise<SpireServer> {
  const conf = spireServerConfig(o);
  const p = spireServerPaths(o.dir);
  mkdirSync(p.data, { recursive: true, mode: 0o700 });
  writeFileSync(p.config, conf, { mode: 0o600 });
  const bin = spireBinary('spire-server');
  const proc = ManagedProcess.start({
    name: 'spire-server',
    command: bin,
    args: ['run', '-config', p.config],
    dir: o.dir,
    stopGraceMs: 10_000,
  });
  const cli = (command: readonly string[], args: readonly string[]): Promise<string> =>
    run(bin, [...command, '-socketPath', p.socket, ...args], {
      what: `spire-server ${command.join(' ')}`,
      timeoutMs: 30_000,
    });
  await waitUntil(() => cli(['healthcheck'], []).then((out) => / is healthy\./.test(out)), {
    what: 'spire-server healthcheck',
    timeoutMs: 60_000,
    proc,
  });
  return {
    process: proc,
    port: o.port,
    socketPath: p.socket,
    cli,
    async joinToken(spiffeId, ttlSeconds = 600) {
      const out = await cli(
        ['token', 'generate'],
        ['-spiffeID', spiffeId, '-ttl', String(ttlSeconds)],
      );
      const token = /^Token: (\S+)$/m.exec(out)?.[1];
      if (!token) throw new Error('spire-server token generate printed no "Token:" line');
      return token;
    },
    stop: () => proc.stop(),
  };
}

/** Start spire-agent with {@link spireAgentConfig} and wait until its healthcheck passes. */
export async function startSpireAgent(o: SpireAgentOptions): Promise<SpireAgent> {
  const conf = spireAgentConfig(o);
  const p = spireAgentPaths(o.dir);
  mkdirSync(p.data, { recursive: true, mode: 0o700 });
  // Workloads of any uid dial the socket; the agent makes the socket itself 0777.
  mkdirSync(join(o.dir, 'public'), { recursive: true });
  chmodSync(o.dir, 0o755);
  chmodSync(join(o.dir, 'public'), 0o755);
  writeFileSync(p.config, conf, { mode: 0o600 });
  const bin = spireBinary('spire-agent');
  const proc = ManagedProcess.start({
    name: 'spire-agent',
    command: bin,
    args: ['run', '-config', p.config],
    dir: o.dir,
    stopGraceMs: 10_000,
  });
  await waitUntil(
    () =>
      run(bin, ['healthcheck', '-socketPath', p.socket], {
        what: 'spire-agent healthcheck',
        timeoutMs: 30_000,
      }).then((out) => / is healthy\./.test(out)),
    { what: 'spire-agent healthcheck', timeoutMs: 60_000, proc },
  );
  return { process: proc, socketPath: p.socket, stop: () => proc.stop() };
}
