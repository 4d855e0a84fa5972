/**
 * The readiness probe of the local ingress's nginx. Imported by absolute path inside Pulumi's
 * dynamic-provider host (see process.ts for why).
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

/** Where the probe shakes hands, and what it trusts. */
export interface EdgeProbe {
  host: string;
  port: number;
  /** SNI and the name checked on the certificate (the edge's first DNS name). */
  servername: string;
  /** PEM bundle of the root the edge certificate chains to. */
  caFile: string;
}

/**
 * Ready once nginx completes a TLS handshake with a certificate that chains to `caFile`; not yet
 * while nothing listens. nginx reads its certificate at each handshake (ADR 0032), so a missing,
 * unreadable or mismatched file no longer stops it at start: without this probe `up` would pass with
 * an edge that refuses every client. A listener that fails the handshake throws, and the message
 * says where to look.
 */
export function probe(p: EdgeProbe): Promise<boolean> {
  const ca = readFileSync(p.caFile, 'utf8');
  return new Promise((resolve, reject) => {
    const s = connect({ host: p.host, port: p.port, servername: p.servername, ca });
    s.setTimeout(3_000);
    s.once('secureConnect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException & { reason?: string }) => {
      s.destroy();
      if (err.code === 'ECONNREFUSED') {
        resolve(false); // not listening yet
        return;
      }
      reject(
        new Error(
          `nginx at ${p.host}:${p.port} did not complete a TLS handshake with the edge certificate ` +
            // OpenSSL's own message is several lines of codes; its reason is the useful part.
            `(${err.reason ?? err.message.split('\n')[0] ?? ''}). nginx reads the certificate and key at each handshake (ADR 0032): check ` +
            "that both files exist, belong together and are readable by nginx's user; nginx's error log " +
            'names the file',
        ),
      );
    });
  });
}
