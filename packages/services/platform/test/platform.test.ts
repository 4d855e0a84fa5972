import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { CassandraDependency, FixedAddressTranslator } from '../src/cassandra.ts';
import { TlsMaterial } from '../src/tls.ts';

describe('FixedAddressTranslator', () => {
  it('maps every node address to the proxy endpoint', () => {
    const seen: string[] = [];
    const t = new FixedAddressTranslator('127.0.0.1:15042');
    t.translate('10.0.0.7', 9042, (e: string) => seen.push(e));
    new FixedAddressTranslator('[::1]:15042').translate('10.0.0.8', 9042, (e: string) =>
      seen.push(e),
    );
    expect(seen).toEqual(['127.0.0.1:15042', '[::1]:15042']);
  });

  it('is accepted by cassandra-driver, which checks the policy class at runtime', async () => {
    const log = Fastify({ logger: false }).log;
    const dep = new CassandraDependency(
      { contactPoints: ['127.0.0.1:1'], localDataCenter: 'dc1', translateTo: '127.0.0.1:2' },
      log,
    );
    expect(dep.ready()).toBe(false);
    await dep.close();
  });
});

describe('TlsMaterial', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-material-'));
  const ca = join(dir, 'ca.pem');
  const crt = join(dir, 'c.crt');
  const key = join(dir, 'c.key');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('always verifies the server, and checks a SPIFFE ID instead of the host name when given', () => {
    writeFileSync(ca, 'CA1');
    const m = new TlsMaterial({ caFile: ca, serverId: 'spiffe://t/ns/data/sa/cassandra' });
    const o = m.current();
    expect(o.rejectUnauthorized).toBe(true);
    expect(String(o.ca)).toBe('CA1');
    const check = o.checkServerIdentity;
    expect(
      check?.('127.0.0.1', { subjectaltname: 'URI:spiffe://t/ns/data/sa/cassandra' } as never),
    ).toBeUndefined();
    expect(
      check?.('127.0.0.1', {
        subjectaltname: 'IP Address:127.0.0.1, URI:spiffe://t/ns/data/sa/other',
      } as never)?.message,
    ).toContain('does not carry URI SAN spiffe://t/ns/data/sa/cassandra');
  });

  it('re-reads rotated files', () => {
    writeFileSync(crt, 'CERT1');
    writeFileSync(key, 'KEY1');
    const m = new TlsMaterial({ caFile: ca, certFile: crt, keyFile: key });
    expect(String(m.current().cert)).toBe('CERT1');
    expect(m.changed()).toBe(false);
    writeFileSync(crt, 'CERT2-rotated');
    writeFileSync(key, 'KEY2-rotated');
    expect(m.changed()).toBe(true);
    expect(String(m.current().cert)).toBe('CERT2-rotated');
    expect(String(m.current().key)).toBe('KEY2-rotated');
  });

  it('needs both halves of a client certificate', () => {
    expect(() => new TlsMaterial({ caFile: ca, certFile: crt })).toThrow(
      'both certFile and keyFile',
    );
  });
});
