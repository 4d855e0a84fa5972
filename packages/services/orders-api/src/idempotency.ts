/**
 * The `Idempotency-Key` contract of `POST /orders` (draft-ietf-httpapi-idempotency-key-header; ADR
 * 0017): parsing the header, the order id a (subject, key) pair always maps to, and the fingerprint
 * that tells a retry from a different request under the same key. Pure functions; the store and the
 * route use them.
 */
import { createHash } from 'node:crypto';

/** The request header, lower case as Node delivers it. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** What a key may contain: published in docs/services.md, checked before anything else. */
export const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** A header that is present but not a valid key. The message names the header. */
export class IdempotencyKeyError extends Error {}

/**
 * The key in an `Idempotency-Key` header, or null when the header is absent. The draft makes the
 * value an RFC 8941 sf-string (`"8e03978e-…"`); the bare form (`8e03978e-…`) that Stripe-style
 * clients send is accepted too. Either way the content must match {@link KEY_PATTERN}, so the quoted
 * form never needs escapes. Repeated headers (which Node joins with `, `) are refused: the draft
 * allows one.
 */
export function parseIdempotencyKey(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  if (Array.isArray(value)) throw new IdempotencyKeyError(`${IDEMPOTENCY_KEY_HEADER}: sent twice`);
  const v = value.trim();
  const quoted = v.length >= 2 && v.startsWith('"') && v.endsWith('"');
  const key = quoted ? v.slice(1, -1) : v;
  if (!KEY_PATTERN.test(key)) {
    throw new IdempotencyKeyError(
      `${IDEMPOTENCY_KEY_HEADER}: must be 1-128 characters [A-Za-z0-9._:-], optionally in double quotes`,
    );
  }
  return key;
}

/**
 * The order id for a (subject, key) pair: a name-based UUID (RFC 9562 version 8, SHA-256 of the
 * pair, as in its appendix B.2), so every retry of one request addresses the same row, on any
 * replica, before anything is stored. Keys are scoped to the subject: two callers using the same key
 * get different orders. A length prefix keeps ("ab", "c") and ("a", "bc") apart.
 */
export function orderIdFor(subject: string, key: string): string {
  const h = createHash('sha256')
    .update(`trellis/orders-api/idempotency/v1\n${subject.length}:${subject}\n${key}`)
    .digest();
  const b = Buffer.from(h.subarray(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x80; // version 8
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80; // variant 10
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The fields of a `POST /orders` body (validated before this runs). */
export interface OrderRequest {
  sku: string;
  quantity: number;
  customerRef?: string;
}

/**
 * The request's fingerprint: SHA-256 of its fields in a fixed order, so the same order sent with
 * its JSON keys reordered or re-spaced is the same request, and any changed field is not. Lower-case
 * hex, the form of `requestHash` in `order.accepted` (`@trellis/contracts/orders-intake-v1`).
 */
export function fingerprint(r: OrderRequest): string {
  return digest(r).toString('hex');
}

/**
 * Whether a stored `request_hash` is this request's fingerprint. Rows written by ADR 0017's
 * orders-api hold the same SHA-256 in base64url, so a retry of such an order still matches.
 */
export function sameFingerprint(stored: string | null, r: OrderRequest): boolean {
  if (stored === null) return false;
  const d = digest(r);
  return stored === d.toString('hex') || stored === d.toString('base64url');
}

function digest(r: OrderRequest): Buffer {
  return createHash('sha256')
    .update(JSON.stringify([r.sku, r.quantity, r.customerRef ?? null]))
    .digest();
}
