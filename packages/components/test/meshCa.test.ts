import { X509Certificate } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import type { IntermediateOutputs } from '../src/pki/ca-impl.ts';
import { isSecretValue, RecordingMocks, resolve, settle } from './support/mocks.ts';

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
    expect(usCert.subject.split('\n')).toEqual([
      'O=Trellis',
      'OU=trellis.example',
      'CN=trellis.example prod-us mesh intermediate',
    ]);
    await settle(mocks);
    expect(mocks.unexpectedCalls).toEqual([]);
    // Dynamic resources of the project, no @pulumi/tls; the root key goes in only as a secret.
    expect(mocks.resources.filter((r) => r.type.startsWith('tls:'))).toEqual([]);
    expect(mocks.ofType(pki.rootCaType).map((r) => r.name)).toEqual(['root-keypair']);
    const inters = mocks.ofType(pki.intermediateCaType);
    expect(inters.map((r) => r.name).sort()).toEqual(['eu-keypair', 'us-keypair']);
    for (const r of inters) {
      expect(isSecretValue(r.raw.rootKeyPem)).toBe(true);
      expect(r.inputs.earlyRenewalHours).toBe(720);
      expect(r.inputs.validityHours).toBe(17_520);
    }
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

  it('re-issues an intermediate in place inside its renewal window or for a new root', async () => {
    const diff = pki.intermediateProvider.diff as NonNullable<typeof pki.intermediateProvider.diff>;
    const inputs = {
      commonName: 'trellis.example prod-us mesh intermediate',
      organization: 'Trellis',
      organizationalUnit: 'trellis.example',
      validityHours: 17_520,
      earlyRenewalHours: 720,
      rootCertPem: 'ROOT-1',
      rootKeyPem: 'KEY-1',
    };
    const day = 86_400_000;
    const olds = (daysLeft: number): IntermediateOutputs => ({
      ...inputs,
      certPem: 'CERT',
      keyPem: 'KEY',
      notAfter: new Date(Date.now() + daysLeft * day).toISOString(),
    });
    expect(await diff('id', olds(400), inputs)).toEqual({ changes: false, replaces: [] });
    // 30 days (720 h) before expiry the next `up` renews.
    expect(await diff('id', olds(29), inputs)).toEqual({ changes: true, replaces: [] });
    expect(await diff('id', olds(400), { ...inputs, rootCertPem: 'ROOT-2' })).toEqual({
      changes: true,
      replaces: [],
    });
    const rootDiff = pki.rootProvider.diff as NonNullable<typeof pki.rootProvider.diff>;
    const root = {
      commonName: 'trellis.example root CA',
      organization: 'Trellis',
      organizationalUnit: 'trellis.example',
      validityHours: 87_600,
    };
    const rootState = { ...root, certPem: 'C', keyPem: 'K', notAfter: '2036-01-01T00:00:00Z' };
    expect(await rootDiff('id', rootState, root)).toEqual({ changes: false, replaces: [] });
    expect(await rootDiff('id', rootState, { ...root, organizationalUnit: 'other' })).toEqual({
      changes: true,
      replaces: ['organizationalUnit'],
    });
  });

  it('rejects a validity longer than ten years, naming the field', () => {
    expect(
      () => new pki.RootCa('long', { trustDomain: 't.example', validityHours: 87_601 }),
    ).toThrow('RootCa long: validityHours must be a positive integer of at most 87600');
  });

  it('rejects a trust domain with a slash', () => {
    expect(() => new pki.RootCa('bad', { trustDomain: 'a/b' })).toThrow(/trustDomain/);
  });
});
