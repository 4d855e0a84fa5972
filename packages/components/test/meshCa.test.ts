import { X509Certificate } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { RecordingMocks, resolve, settle } from './support/mocks.ts';

const mocks = new RecordingMocks();
let pki: typeof import('../src/pki/meshCa.ts');

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, 'trellis-test', 'unit', false);
  pki = await import('../src/pki/meshCa.ts');
});

describe('RootCa and IntermediateCa', () => {
  it('signs each cluster intermediate with the one root, verifiable with X.509', async () => {
    const root = new pki.RootCa('root', { trustDomain: 'trellis.example' });
    const us = new pki.IntermediateCa('us', {
      root: { certPem: root.certPem, keyPem: root.keyPem },
      trustDomain: 'trellis.example',
      cluster: 'prod-us',
      purpose: 'mesh',
    });
    const eu = new pki.IntermediateCa('eu', {
      root: { certPem: root.certPem, keyPem: root.keyPem },
      trustDomain: 'trellis.example',
      cluster: 'prod-eu',
      purpose: 'mesh',
    });
    const rootCert = new X509Certificate((await resolve(root.certPem)).value);
    expect(rootCert.ca).toBe(true);
    expect(rootCert.verify(rootCert.publicKey)).toBe(true);
    for (const ica of [us, eu]) {
      const cacerts = await resolve(ica.cacerts);
      expect(cacerts.secret).toBe(true);
      const inter = new X509Certificate(cacerts.value['ca-cert.pem'] as string);
      expect(inter.ca).toBe(true);
      expect(inter.verify(rootCert.publicKey)).toBe(true);
      expect(inter.checkIssued(rootCert)).toBe(true);
      expect(new X509Certificate(cacerts.value['root-cert.pem'] as string).fingerprint256).toBe(
        rootCert.fingerprint256,
      );
      // cert-chain.pem: the intermediate, then the root.
      const chain = (cacerts.value['cert-chain.pem'] as string).split(
        /(?<=-----END CERTIFICATE-----\n)/,
      );
      expect(new X509Certificate(chain[0] as string).fingerprint256).toBe(inter.fingerprint256);
      expect(new X509Certificate(chain[1] as string).fingerprint256).toBe(rootCert.fingerprint256);
    }
    const usCert = new X509Certificate((await resolve(us.certPem)).value);
    const euCert = new X509Certificate((await resolve(eu.certPem)).value);
    expect(usCert.subject).toContain('prod-us');
    expect(euCert.subject).toContain('prod-eu');
    expect(usCert.verify(euCert.publicKey)).toBe(false);
    expect((await resolve(root.keyPem)).secret).toBe(true);
    expect((await resolve(us.keyPem)).secret).toBe(true);
    await settle(mocks);
    expect(mocks.unexpectedCalls).toEqual([]);
  });

  it('rejects a bad cluster name, naming the field', () => {
    expect(
      () =>
        new pki.IntermediateCa('bad', {
          root: { certPem: 'x', keyPem: 'y' },
          trustDomain: 'trellis.example',
          cluster: 'Prod US',
          purpose: 'mesh',
        }),
    ).toThrow(/cluster must be lowercase/);
  });

  it('rejects a trust domain with a slash', () => {
    expect(() => new pki.RootCa('bad', { trustDomain: 'a/b' })).toThrow(/trustDomain/);
  });
});
