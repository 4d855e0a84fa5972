import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaReloadEntries, keystoreLeaf } from '../src/harness/cert-reload.ts';
import { CertificateAuthority } from '../src/harness/tls.ts';

describe('kafkaReloadEntries', () => {
  it('re-sets each listener’s keystore location, with the listener name in lower case', () => {
    expect(kafkaReloadEntries({ keystore: '/k.pem' })).toEqual([
      { name: 'listener.name.client.ssl.keystore.location', value: '/k.pem' },
      { name: 'listener.name.broker.ssl.keystore.location', value: '/k.pem' },
      { name: 'listener.name.controller.ssl.keystore.location', value: '/k.pem' },
    ]);
  });

  it('adds the truststore location when a new bundle is given', () => {
    expect(
      kafkaReloadEntries({
        keystore: '/k.pem',
        truststore: '/t.pem',
        listeners: ['CLIENT_ORDERS'],
      }),
    ).toEqual([
      { name: 'listener.name.client_orders.ssl.keystore.location', value: '/k.pem' },
      { name: 'listener.name.client_orders.ssl.truststore.location', value: '/t.pem' },
    ]);
  });

  it('refuses a bad or missing listener name, naming the field', () => {
    expect(() => kafkaReloadEntries({ keystore: '/k.pem', listeners: ['client'] })).toThrow(
      'reloadKafkaCertificates: listeners: "client" must match [A-Z][A-Z0-9_]*',
    );
    expect(() => kafkaReloadEntries({ keystore: '/k.pem', listeners: [] })).toThrow(
      'reloadKafkaCertificates: listeners must name at least one listener',
    );
  });
});

describe('keystoreLeaf', () => {
  it('reads the leaf of a PEM keystore (key, then chain), and says which file holds none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-leaf-'));
    try {
      const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
      const issued = await ca.issue({ commonName: 'kafka', validDays: 1 });
      const ks = join(dir, 'ks.pem');
      writeFileSync(ks, issued.keyPem + issued.chainPem);
      const leaf = keystoreLeaf(ks, 'test');
      const { X509Certificate } = await import('node:crypto');
      const cert = new X509Certificate(issued.certPem);
      expect(leaf.serial).toBe(cert.serialNumber.replace(/^0+/, ''));
      expect(leaf.notAfter).toBe(new Date(cert.validTo).toISOString());
      writeFileSync(ks, issued.keyPem);
      expect(() => keystoreLeaf(ks, 'test')).toThrow(`test: keystore ${ks} holds no certificate`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
