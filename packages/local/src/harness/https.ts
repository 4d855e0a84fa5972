import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Options of {@link requestText}. */
export interface TextRequestOptions {
  /** @default 'GET' */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * PEM roots an `https` server must chain to. They replace the system's roots, so a client given the
   * stack's bundle trusts that CA and nothing else. @default the system's roots
   */
  ca?: string | Buffer;
  /** @default 10_000 */
  timeoutMs?: number;
}

/** An HTTP answer with its body as text. */
export interface TextReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP(S) request, the body read as text. Unlike `fetch`, it takes the roots to trust, which is
 * what a client of a local server with a certificate from the stack's CA needs. `localhost` is
 * dialled over IPv4: the local servers listen on 127.0.0.1, and `localhost` may resolve to ::1 first.
 * The certificate is still checked against the name in the URL. Rejects on a connection or TLS
 * failure (a certificate the roots do not vouch for: `err.code` names why), never on a status.
 */
export function requestText(url: string | URL, o: TextRequestOptions = {}): Promise<TextReply> {
  const u = new URL(url);
  const tls = u.protocol === 'https:';
  if (!tls && u.protocol !== 'http:')
    return Promise.reject(new Error(`requestText: ${u.protocol} URLs are not supported`));
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      u,
      {
        method: o.method ?? 'GET',
        headers: {
          ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}),
          ...o.headers,
        },
        ...(u.hostname === 'localhost' ? { family: 4 } : {}),
        ...(tls && o.ca !== undefined ? { ca: o.ca } : {}),
        // One connection per call: a probe must not reuse a socket to a restarted server.
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${u.origin}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}
