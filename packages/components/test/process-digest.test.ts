// The restart digest of a LocalProcess and the re-issue digest of a certificate: a process or a
// certificate without a pod keeps the digest it had before pods existed (no restart, no re-issue on
// upgrade), and one in a pod changes with its pod.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certInputsDigest, type CertInputs } from '../src/local/pki-impl.ts';
import { digestOf, type ProcessInputs } from '../src/local/process-impl.ts';

const proc: ProcessInputs = {
  name: 'p',
  dir: '/stack/run/p',
  command: '/bin/true',
  args: ['-x'],
  env: { B: '2', A: '1' },
  files: { 'a.json': '{}' },
  ready: { kind: 'tcp', host: '127.0.0.1', port: 1 },
  readyTimeoutMs: 1,
  stopGraceMs: 1,
  purgeOnDelete: true,
};
const pod = { netns: 'trellis.s.p', uid: 1001, gid: 1001 };

describe('digests', () => {
  it('keep a process without a pod at its former digest, and move with a pod', () => {
    const former = createHash('sha256')
      .update(
        JSON.stringify([
          proc.command,
          proc.args,
          Object.entries(proc.env).sort(),
          Object.entries(proc.files).sort(),
          proc.dir,
        ]),
      )
      .digest('hex');
    expect(digestOf(proc)).toBe(former);
    expect(digestOf({ ...proc, pod })).not.toBe(former);
    expect(digestOf({ ...proc, pod: { ...pod, uid: 1002 } })).not.toBe(digestOf({ ...proc, pod }));
  });

  it('re-issue a certificate when its owner changes, and not for a certificate without one', () => {
    const cert = {
      name: 'c',
      dns: [],
      ips: [],
      validHours: 24,
      renewBeforeHours: 12,
      rotation: 0,
      issuerCertPem: 'i',
      issuerKeyPem: 'k',
      rootCertPem: 'r',
      dir: '/stack/pki/c',
    } satisfies CertInputs;
    const former = JSON.stringify([undefined, [], [], 24, 0, 'i', 'r', '/stack/pki/c']);
    expect(certInputsDigest(cert)).toBe(former);
    expect(certInputsDigest({ ...cert, owner: { uid: 1001, gid: 1001 } })).not.toBe(former);
  });
});
