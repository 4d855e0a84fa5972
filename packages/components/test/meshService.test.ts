import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshServiceArgs } from '../src/k8s/meshService.ts';
import { RecordingMocks, settle } from './support/mocks.ts';

const mocks = new RecordingMocks();
let mesh: typeof import('../src/k8s/meshService.ts');

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, 'trellis-test', 'unit', false);
  mesh = await import('../src/k8s/meshService.ts');
});

const base = (clientCertificate: MeshServiceArgs['clientCertificate']): MeshServiceArgs => ({
  namespace: 'trellis',
  serviceAccount: 'orders-api',
  image: `ghcr.io/trellis/orders-api@sha256:${'a'.repeat(64)}`,
  ports: [{ name: 'http', port: 8080, protocol: 'http' }],
  ...(clientCertificate ? { clientCertificate } : {}),
});
const cert = {
  issuer: { kind: 'ClusterIssuer', name: 'trellis-data-ca' },
  commonName: 'orders-api',
  uris: ['spiffe://trellis.local/ns/trellis/sa/orders-api'],
  trustBundlePem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
} as const;

describe('MeshService client certificate', () => {
  it('refuses a subject or SAN that would not be the identity the data stores map, naming the field', () => {
    expect(() => new mesh.MeshService('a', base({ ...cert, commonName: 'CN=x,O=y' }))).toThrow(
      'MeshService a: clientCertificate.commonName must be 1-64 letters, digits, ".", "_" or "-", got "CN=x,O=y"',
    );
    expect(() => new mesh.MeshService('b', base({ ...cert, uris: [] }))).toThrow(
      'MeshService b: clientCertificate.uris must not be empty',
    );
    expect(
      () => new mesh.MeshService('c', base({ ...cert, uris: ['https://orders-api.example'] })),
    ).toThrow(
      'MeshService c: clientCertificate.uris[0] must be a SPIFFE ID, got "https://orders-api.example"',
    );
  });

  it('mounts the Certificate and the trust bundle read-only, and only when asked', async () => {
    new mesh.MeshService('with', base(cert));
    new mesh.MeshService('without', { ...base(undefined), serviceAccount: 'ledger' });
    await settle(mocks);
    const certs = mocks.kind('Certificate');
    expect(certs.map((c) => c.name)).toEqual(['with-client-cert']);
    expect(certs[0]?.inputs.spec).toMatchObject({
      secretName: 'orders-api-client-tls',
      commonName: 'orders-api',
      uris: cert.uris,
      issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'trellis-data-ca' },
      duration: '24h',
      renewBefore: '8h',
    });
    const pods = Object.fromEntries(
      mocks
        .ofType('kubernetes:apps/v1:Deployment')
        .map((d) => [
          d.name,
          (d.inputs.spec as { template: { spec: Record<string, unknown> } }).template.spec,
        ]),
    );
    expect(pods['with-deploy']?.volumes).toEqual([
      {
        name: 'data-tls',
        projected: {
          defaultMode: 0o444,
          sources: [
            {
              secret: {
                name: 'orders-api-client-tls',
                items: [
                  { key: 'tls.crt', path: 'cert.pem' },
                  { key: 'tls.key', path: 'key.pem' },
                ],
              },
            },
            {
              configMap: {
                name: 'orders-api-data-trust',
                items: [{ key: 'bundle.pem', path: 'bundle.pem' }],
              },
            },
          ],
        },
      },
    ]);
    expect((pods['with-deploy']?.containers as Record<string, unknown>[])[0]?.volumeMounts).toEqual(
      [{ name: 'data-tls', mountPath: '/var/run/trellis/data-tls', readOnly: true }],
    );
    expect(pods['without-deploy']?.volumes).toBeUndefined();
    expect(mocks.unexpectedCalls).toEqual([]);
  });
});
