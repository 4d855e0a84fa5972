/**
 * Caller identity as the Envoy sidecar hands it over. The sidecar has already verified both, so the
 * service only parses; it still refuses a request without a user identity (defence in depth: a
 * request that reached the app without passing the sidecar's jwt_authn must not be served).
 *
 * - User: jwt_authn `forward_payload_header` puts `base64url(jwt_payload_in_JSON)` in a header, by
 *   default without padding (`pad_forward_payload_header` adds it). Envoy API:
 *   envoy.extensions.filters.http.jwt_authn.v3.JwtProvider.forward_payload_header.
 * - Peer workload: `x-forwarded-client-cert` (XFCC), set by the sidecar from the mTLS peer
 *   certificate. Comma-separated elements, one per proxy hop, the last appended by the nearest
 *   proxy; each element is `;`-separated `Key=value` pairs, keys case-insensitive, values with
 *   `, ; =` double-quoted and `"` escaped as `\"`. `URI=` carries the peer's URI SAN, here its
 *   SPIFFE ID. (Envoy docs: configuration/http/http_conn_man/headers, x-forwarded-client-cert.)
 */

import { identityHeaders } from '@trellis/contracts';

/** Who is calling: the end user (or agent) from the token, and the workload that sent the request. */
export interface Caller {
  /** `sub` of the validated token. */
  subject: string;
  /** `iss` of the token, when present. */
  issuer?: string;
  /** The OAuth client the token was issued to (`azp`, or `client_id`), e.g. an agent's client. */
  clientId?: string;
  /** Scopes granted (`scope` space-delimited, or `scp` array). */
  scopes: string[];
  /** SPIFFE ID of the mTLS peer (the ingress sidecar, or another workload), when XFCC is present. */
  peer?: string;
}

/** Header names; both configurable because they are chosen in the sidecar's configuration. */
export interface IdentityOptions {
  /** Header carrying the verified JWT payload. @default 'x-jwt-payload' */
  payloadHeader: string;
  /** Header carrying the peer certificate details. @default 'x-forwarded-client-cert' */
  xfccHeader: string;
  /** Refuse requests without a SPIFFE peer in XFCC. @default false */
  requirePeer: boolean;
}

/** Defaults for {@link IdentityOptions}. */
export const identityDefaults: IdentityOptions = {
  payloadHeader: identityHeaders.jwtPayload,
  xfccHeader: identityHeaders.clientCert,
  requirePeer: false,
};

/** Why a request has no usable identity; the message is safe to return to the client. */
export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

const MAX_HEADER = 16 * 1024;

/** Decode the forwarded JWT payload header into claims. Throws {@link IdentityError} when unusable. */
export function parsePayloadHeader(header: string, value: string | string[] | undefined): Caller {
  if (value === undefined || value === '') throw new IdentityError(`missing ${header} header`);
  if (Array.isArray(value)) throw new IdentityError(`more than one ${header} header`);
  // base64url, with or without padding (pad_forward_payload_header); reject anything else rather than
  // letting Buffer.from skip invalid characters silently.
  if (value.length > MAX_HEADER || !/^[A-Za-z0-9_-]+={0,2}$/.test(value)) {
    throw new IdentityError(`${header} is not base64url`);
  }
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw new IdentityError(`${header} does not decode to JSON`);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new IdentityError(`${header} does not decode to a JSON object`);
  }
  const c = claims as Record<string, unknown>;
  if (typeof c.sub !== 'string' || c.sub === '' || c.sub.length > 256) {
    throw new IdentityError(`${header} has no usable sub claim`);
  }
  const caller: Caller = { subject: c.sub, scopes: scopesOf(c) };
  if (typeof c.iss === 'string') caller.issuer = c.iss;
  const client = typeof c.azp === 'string' ? c.azp : c.client_id;
  if (typeof client === 'string') caller.clientId = client;
  return caller;
}

function scopesOf(c: Record<string, unknown>): string[] {
  if (typeof c.scope === 'string') return c.scope.split(' ').filter((s) => s !== '');
  if (Array.isArray(c.scp)) return c.scp.filter((s): s is string => typeof s === 'string');
  return [];
}

/** One XFCC element: lower-cased keys, each with every value it had (URI and DNS may repeat). */
export type XfccElement = Map<string, string[]>;

/** Parse an XFCC header value into its elements. Throws {@link IdentityError} on malformed input. */
export function parseXfcc(value: string): XfccElement[] {
  if (value.length > MAX_HEADER)
    throw new IdentityError(`${identityHeaders.clientCert} is too long`);
  const elements: XfccElement[] = [];
  let el: XfccElement = new Map();
  let i = 0;
  const fail = (why: string): never => {
    throw new IdentityError(`malformed ${identityHeaders.clientCert}: ${why}`);
  };
  for (;;) {
    const eq = value.indexOf('=', i);
    if (eq < 0) fail(`expected key=value at ${i}`);
    const key = value.slice(i, eq).trim().toLowerCase();
    if (!/^[a-z]+$/.test(key)) fail(`bad key "${key}"`);
    i = eq + 1;
    let v = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) fail('unterminated quoted value');
        const ch = value[i];
        if (ch === '\\' && value[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (ch === '"') {
          i++;
          break;
        } else {
          v += ch;
          i++;
        }
      }
    } else {
      while (i < value.length && value[i] !== ';' && value[i] !== ',') v += value[i++];
      if (v.includes('"') || v.includes('=')) fail(`unquoted value for ${key} contains " or =`);
    }
    el.set(key, [...(el.get(key) ?? []), v]);
    if (i >= value.length) break;
    const sep = value[i++];
    if (sep === ',') {
      elements.push(el);
      el = new Map();
    } else if (sep !== ';') {
      fail(`unexpected "${sep}" after value of ${key}`);
    }
  }
  elements.push(el);
  return elements;
}

/**
 * The SPIFFE ID of the immediate mTLS peer: the `URI=` of the last XFCC element (the one the nearest
 * sidecar appended). Undefined when the header is absent or carries no spiffe:// URI.
 */
export function peerFromXfcc(value: string | string[] | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value))
    throw new IdentityError(`more than one ${identityHeaders.clientCert} header`);
  const last = parseXfcc(value).at(-1);
  return last?.get('uri')?.find((u) => u.startsWith('spiffe://'));
}
