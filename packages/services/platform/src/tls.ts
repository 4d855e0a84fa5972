import { readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';

/**
 * Client TLS from files: the mesh CA bundle, and optionally the workload certificate and key for
 * mTLS (the SVID files the local mesh CA writes). Paths, not contents, so rotated files are picked up.
 */
export interface TlsFiles {
  /** PEM bundle of CAs that may sign the server certificate. */
  caFile: string;
  /** PEM client certificate (chain) for mTLS. Requires `keyFile`. */
  certFile?: string;
  /** PEM private key of `certFile`. */
  keyFile?: string;
  /** SNI name to send. */
  serverName?: string;
  /**
   * Expected URI SAN of the server (e.g. `spiffe://trellis.local/ns/data/sa/cassandra`). Mesh
   * certificates identify workloads by SPIFFE ID rather than by host name, so when this is set the
   * server is checked against it instead of the host name. @default host name verification
   */
  serverId?: string;
}

/**
 * Reads the TLS files, and re-reads them when they change on disk. Call {@link current} for each new
 * connection: established connections keep their session, new ones use the rotated certificate.
 */
export class TlsMaterial {
  private readonly files: TlsFiles;
  private stamp = '';
  private options: ConnectionOptions = {};

  constructor(files: TlsFiles) {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
      throw new Error('TLS: a client certificate needs both certFile and keyFile');
    }
    this.files = files;
    this.current();
  }

  /** Options for `tls.connect`, always verifying the server. */
  current(): ConnectionOptions {
    const paths = [this.files.caFile, this.files.certFile, this.files.keyFile].filter(
      (p): p is string => p !== undefined,
    );
    const stamp = paths
      .map((p) => {
        const s = statSync(p);
        return `${p}:${s.mtimeMs}:${s.size}`;
      })
      .join('|');
    if (stamp === this.stamp) return this.options;
    const serverId = this.files.serverId;
    const opts: ConnectionOptions = {
      ca: readFileSync(this.files.caFile),
      // Explicit: cassandra-driver defaults rejectUnauthorized to false.
      rejectUnauthorized: true,
    };
    if (this.files.certFile && this.files.keyFile) {
      opts.cert = readFileSync(this.files.certFile);
      opts.key = readFileSync(this.files.keyFile);
    }
    if (this.files.serverName) opts.servername = this.files.serverName;
    if (serverId) opts.checkServerIdentity = (_host, cert) => checkUriSan(cert, serverId);
    this.options = opts;
    this.stamp = stamp;
    return opts;
  }

  /** True when the files changed since the last {@link current} call (then call it again). */
  changed(): boolean {
    const before = this.stamp;
    this.current();
    return this.stamp !== before;
  }
}

/** Node's `checkServerIdentity` contract: undefined when fine, an Error otherwise. */
export function checkUriSan(cert: PeerCertificate, expected: string): Error | undefined {
  const sans = (cert.subjectaltname ?? '').split(',').map((s) => s.trim());
  if (sans.includes(`URI:${expected}`)) return undefined;
  return new Error(
    `server certificate does not carry URI SAN ${expected} (has: ${sans.join(', ') || 'none'})`,
  );
}
