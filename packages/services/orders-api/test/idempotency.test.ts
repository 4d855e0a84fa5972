import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  IdempotencyKeyError,
  fingerprint,
  orderIdFor,
  sameFingerprint,
  parseIdempotencyKey,
} from '../src/idempotency.ts';

describe('parseIdempotencyKey', () => {
  it.each([
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['  "clkyoesmbgybucifusbbtdsbohtyuuwz" ', 'clkyoesmbgybucifusbbtdsbohtyuuwz'],
    ['load-3:17.x_y', 'load-3:17.x_y'],
    [`"${'k'.repeat(128)}"`, 'k'.repeat(128)],
  ])('reads %s as %s', (header, key) => {
    expect(parseIdempotencyKey(header)).toBe(key);
  });

  it('answers null when the header is absent', () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
  });

  it.each([
    ['empty', ''],
    ['empty quotes', '""'],
    ['an unbalanced quote', '"abc'],
    ['a space', '"a b"'],
    ['an escape', '"a\\"b"'],
    ['non-ASCII', 'clé'],
    ['two keys joined by Node', '"a", "b"'],
    ['129 characters', 'k'.repeat(129)],
  ])('refuses %s, naming the header', (_what, header) => {
    expect(() => parseIdempotencyKey(header)).toThrow(IdempotencyKeyError);
    expect(() => parseIdempotencyKey(header)).toThrow(/^idempotency-key: must be 1-128/);
  });

  it('refuses the header sent twice', () => {
    expect(() => parseIdempotencyKey(['a', 'b'])).toThrow('idempotency-key: sent twice');
  });
});

describe('orderIdFor', () => {
  it('is the same UUID (version 8, RFC 9562 variant) for the same subject and key', () => {
    const id = orderIdFor('alice', 'k-1');
    expect(id).toBe(orderIdFor('alice', 'k-1'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('scopes keys to the subject, and keeps the pair boundaries apart', () => {
    expect(orderIdFor('alice', 'k-1')).not.toBe(orderIdFor('bob', 'k-1'));
    expect(orderIdFor('alice', 'k-1')).not.toBe(orderIdFor('alice', 'k-2'));
    expect(orderIdFor('ab', 'c')).not.toBe(orderIdFor('a', 'bc'));
    // A subject containing the separator cannot pose as another pair either.
    expect(orderIdFor('a\nb', 'c')).not.toBe(orderIdFor('a', 'b\nc'));
  });
});

describe('fingerprint', () => {
  it('depends on the fields, not on how the JSON was written', () => {
    const a = JSON.parse('{"sku":"A-1","quantity":2,"customerRef":"c"}') as {
      sku: string;
      quantity: number;
      customerRef: string;
    };
    const b = JSON.parse('{ "customerRef": "c", "quantity": 2, "sku": "A-1" }') as typeof a;
    expect(fingerprint(a)).toBe(fingerprint(b));
  });

  it('changes when any field changes, or appears', () => {
    const base = fingerprint({ sku: 'A-1', quantity: 2 });
    expect(fingerprint({ sku: 'A-2', quantity: 2 })).not.toBe(base);
    expect(fingerprint({ sku: 'A-1', quantity: 3 })).not.toBe(base);
    expect(fingerprint({ sku: 'A-1', quantity: 2, customerRef: 'c' })).not.toBe(base);
    expect(fingerprint({ sku: 'A-1', quantity: 2, customerRef: 'null' })).not.toBe(base);
  });

  it("is SHA-256 in lower-case hex, the contract's requestHash form", () => {
    const body = { sku: 'A-1', quantity: 2 };
    const want = createHash('sha256').update('["A-1",2,null]').digest('hex');
    expect(fingerprint(body)).toBe(want);
    expect(fingerprint(body)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('sameFingerprint', () => {
  const body = { sku: 'A-1', quantity: 2 };
  const d = createHash('sha256').update('["A-1",2,null]').digest();

  it('matches the hex form, and the base64url form rows of ADR 0017 hold', () => {
    expect(sameFingerprint(d.toString('hex'), body)).toBe(true);
    expect(sameFingerprint(d.toString('base64url'), body)).toBe(true);
  });

  it('does not match another body, a missing hash (a keyless order) or another encoding', () => {
    expect(sameFingerprint(d.toString('hex'), { sku: 'A-1', quantity: 3 })).toBe(false);
    expect(sameFingerprint(null, body)).toBe(false);
    expect(sameFingerprint(d.toString('base64'), body)).toBe(false);
    expect(sameFingerprint(d.toString('hex').toUpperCase(), body)).toBe(false);
  });
});
