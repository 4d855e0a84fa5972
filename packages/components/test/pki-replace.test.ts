// A replacement (`pulumi up --replace`, or any create-before-delete) writes the new certificate or CA
// into the same directory before the old resource's delete runs: that delete must leave the new files.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMeshCa,
  deleteCertFiles,
  deleteMeshCaFiles,
  issueCert,
  type MeshCaOutputs,
} from '../src/local/pki-impl.ts';
import { removeWithEmptyParents } from '../src/local/process-impl.ts';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

const caIn = (dir: string) => ({
  trustDomain: 'trellis.test',
  region: 'local',
  rootValidDays: 2,
  intermediateValidDays: 1,
  dir,
});

function certIn(ca: MeshCaOutputs, dir: string) {
  return {
    name: 'orders-api',
    spiffeId: 'spiffe://trellis.test/ns/trellis/sa/orders-api',
    dns: [],
    ips: [],
    validHours: 1,
    renewBeforeHours: 0.5,
    rotation: 0,
    issuerCertPem: ca.intermediateCertPem,
    issuerKeyPem: ca.intermediateKeyPem,
    rootCertPem: ca.rootCertPem,
    dir,
  };
}

describe('deleting a replaced certificate or CA', () => {
  it("removes a certificate's files when they are its own", async () => {
    root = mkdtempSync(join(tmpdir(), 'trellis-pki-'));
    const ca = await createMeshCa(caIn(join(root, 'pki')));
    const old = await issueCert(certIn(ca, join(root, 'pki', 'orders-api')));
    expect(deleteCertFiles(old, (d) => removeWithEmptyParents(d, 0))).toBe(true);
    expect(existsSync(old.dir)).toBe(false);
  });

  it("leaves its successor's files: the replacement was written first", async () => {
    root = mkdtempSync(join(tmpdir(), 'trellis-pki-'));
    const ca = await createMeshCa(caIn(join(root, 'pki')));
    const dir = join(root, 'pki', 'orders-api');
    const old = await issueCert(certIn(ca, dir));
    const successor = await issueCert(certIn(ca, dir));
    expect(successor.certPem).not.toBe(old.certPem);
    expect(deleteCertFiles(old, (d) => removeWithEmptyParents(d, 0))).toBe(false);
    expect(readFileSync(successor.files.cert, 'utf8')).toContain(successor.certPem.trim());
    expect(readFileSync(successor.files.key, 'utf8')).toBe(successor.keyPem);
  });

  it("leaves a successor CA's bundle and directory, and removes its own", async () => {
    root = mkdtempSync(join(tmpdir(), 'trellis-pki-'));
    const dir = join(root, 'pki');
    const old = await createMeshCa(caIn(dir));
    const successor = await createMeshCa(caIn(dir));
    const cert = await issueCert(certIn(successor, join(dir, 'orders-api')));
    expect(deleteMeshCaFiles(old, (d) => removeWithEmptyParents(d, 0))).toBe(false);
    expect(readFileSync(successor.bundleFile, 'utf8')).toContain(successor.rootCertPem.trim());
    expect(existsSync(cert.files.cert)).toBe(true);
    expect(deleteMeshCaFiles(successor, (d) => removeWithEmptyParents(d, 0))).toBe(true);
    expect(existsSync(successor.bundleFile)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
