/**
 * The bodies of the local Mesh CA and workload-certificate dynamic providers. Imported by absolute path
 * inside Pulumi's dynamic-provider host (see process.ts for why).
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { svidFiles } from '@trellis/contracts';
import { CertificateAuthority } from '@trellis/local/harness';

/** Inputs of the Mesh CA: an offline-style root and one intermediate for the region. */
export interface MeshCaInputs {
  trustDomain: string;
  region: string;
  rootValidDays: number;
  intermediateValidDays: number;
  /** Where the trust bundle (`root.pem`) is written for clients such as curl. */
  dir: string;
}

/** Mesh CA outputs. The two keys are marked secret by the resource. */
export interface MeshCaOutputs {
  trustDomain: string;
  region: string;
  dir: string;
  rootCertPem: string;
  rootKeyPem: string;
  intermediateCertPem: string;
  intermediateKeyPem: string;
  bundleFile: string;
}

/** Create the root and the region's intermediate, and write the trust bundle. */
export async function createMeshCa(i: MeshCaInputs): Promise<MeshCaOutputs> {
  const root = await CertificateAuthority.create({
    commonName: `${i.trustDomain} root CA`.slice(0, 64),
    validDays: i.rootValidDays,
  });
  const inter = await root.intermediate({
    commonName: `${i.trustDomain} ${i.region} intermediate`.slice(0, 64),
    validDays: i.intermediateValidDays,
  });
  mkdirSync(i.dir, { recursive: true, mode: 0o700 });
  const bundleFile = join(i.dir, 'root.pem');
  writeFileSync(bundleFile, root.rootPem);
  return {
    trustDomain: i.trustDomain,
    region: i.region,
    dir: i.dir,
    rootCertPem: root.rootPem,
    rootKeyPem: await root.keyPem(),
    intermediateCertPem: inter.certPem,
    intermediateKeyPem: await inter.keyPem(),
    bundleFile,
  };
}

/** Inputs of one workload certificate (an X.509-SVID, or a server certificate for the edge). */
export interface CertInputs {
  name: string;
  /** SPIFFE ID (URI SAN). */
  spiffeId?: string;
  dns: string[];
  ips: string[];
  validHours: number;
  /** Re-issue on `up` once less than this much lifetime is left. */
  renewBeforeHours: number;
  /** Bumping it re-issues at once (`trellis rotate`, the rotation test). */
  rotation: number;
  issuerCertPem: string;
  issuerKeyPem: string;
  rootCertPem: string;
  /** Directory of the PEM files. Rotation swaps them in with one atomic rename (see `writeCertFiles`). */
  dir: string;
  /** The pod user that alone may read the files (its key among them). @default the engine's user */
  owner?: { uid: number; gid: number };
}

/** Certificate outputs; `keyPem` is marked secret by the resource. */
export interface CertOutputs {
  name: string;
  dir: string;
  certPem: string;
  keyPem: string;
  notAfter: string;
  rotation: number;
  /** Files, by role: `cert` (leaf + chain), `key`, `bundle` (trusted roots), `keystore` (key + chain). */
  files: { cert: string; key: string; bundle: string; keystore: string };
  /** Digest of the inputs that require a new certificate. */
  inputsDigest: string;
}

/** What must change for a certificate to be re-issued (not the expiry check). */
export function certInputsDigest(i: CertInputs): string {
  return JSON.stringify([
    i.spiffeId,
    i.dns,
    i.ips,
    i.validHours,
    i.rotation,
    i.issuerCertPem,
    i.rootCertPem,
    i.dir,
    // Only when set, so that certificates without an owner keep their digest (no re-issue).
    ...(i.owner !== undefined ? [i.owner] : []),
  ]);
}

/**
 * Whether `file` still holds `pem` (or is gone). A replacement is created before the old resource is
 * deleted (Pulumi's default, also for `pulumi up --replace`) and writes into the same directory, so a
 * delete must first check that the files there are still its own: otherwise it would remove its
 * successor's, and nothing would write them back (the new resource's state says they exist).
 */
function stillHolds(file: string, pem: string): boolean {
  if (!existsSync(file)) return true;
  return readFileSync(file, 'utf8').includes(pem.trim());
}

/**
 * Delete of a certificate: its directory, with parents left empty, unless a successor's certificate
 * now sits there. Returns whether it removed anything.
 */
export function deleteCertFiles(
  o: Pick<CertOutputs, 'dir' | 'certPem' | 'files'>,
  remove: (dir: string) => void,
): boolean {
  if (!stillHolds(o.files.cert, o.certPem)) return false;
  remove(o.dir);
  return true;
}

/**
 * Delete of the Mesh CA: the trust bundle and the stack's PKI directory (last: by now every certificate
 * below it is gone), unless a successor CA's root now sits in the bundle. Returns whether it removed
 * anything.
 */
export function deleteMeshCaFiles(
  o: Pick<MeshCaOutputs, 'dir' | 'bundleFile' | 'rootCertPem'>,
  remove: (dir: string) => void,
): boolean {
  if (!stillHolds(o.bundleFile, o.rootCertPem)) return false;
  rmSync(o.bundleFile, { force: true });
  remove(o.dir);
  return true;
}

/** True when the certificate is inside its renewal window. */
export function needsRenewal(
  o: Pick<CertOutputs, 'notAfter'>,
  renewBeforeHours: number,
  now = Date.now(),
): boolean {
  return Date.parse(o.notAfter) - now < renewBeforeHours * 3_600_000;
}

/** Issue a certificate and swap its files into place. */
export async function issueCert(i: CertInputs): Promise<CertOutputs> {
  const ca = await CertificateAuthority.fromPem({
    certPem: i.issuerCertPem,
    keyPem: i.issuerKeyPem,
    rootPem: i.rootCertPem,
  });
  const issued = await ca.issue({
    uris: i.spiffeId ? [i.spiffeId] : [],
    dns: i.dns,
    ips: i.ips,
    validDays: i.validHours / 24,
  });
  const files = writeCertFiles(
    i.dir,
    {
      [svidFiles.cert]: issued.chainPem,
      [svidFiles.key]: issued.keyPem,
      [svidFiles.bundle]: i.rootCertPem,
      [svidFiles.keystore]: issued.keyPem + issued.chainPem,
    },
    i.owner,
  );
  const { X509Certificate } = await import('node:crypto');
  return {
    name: i.name,
    dir: i.dir,
    certPem: issued.certPem,
    keyPem: issued.keyPem,
    notAfter: new Date(new X509Certificate(issued.certPem).validTo).toISOString(),
    rotation: i.rotation,
    files: {
      cert: files[svidFiles.cert] ?? '',
      key: files[svidFiles.key] ?? '',
      bundle: files[svidFiles.bundle] ?? '',
      keystore: files[svidFiles.keystore] ?? '',
    },
    inputsDigest: certInputsDigest(i),
  };
}

/**
 * Write a set of files so that readers never see a mix of old and new: the files go into a fresh
 * `..<stamp>` directory, `..data` is re-pointed at it by one rename (a move event in `dir`, which is
 * what Envoy's `watched_directory` reacts to), and each `dir/<name>` is a stable symlink through
 * `..data`. The same layout Kubernetes uses for projected volumes.
 */
export function writeCertFiles(
  dir: string,
  contents: Record<string, string>,
  owner?: { uid: number; gid: number },
): Record<string, string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = `..${Date.now()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const versioned = join(dir, stamp);
  mkdirSync(versioned, { mode: 0o700 });
  for (const [name, text] of Object.entries(contents)) {
    writeFileSync(join(versioned, name), text, { mode: 0o600 });
    if (owner) chownSync(join(versioned, name), owner.uid, owner.gid);
  }
  // A pod's key is its user's alone (0600 in 0700 directories it owns); the directories above are
  // made searchable, never readable, so the user reaches it and lists nothing else.
  if (owner) {
    chownSync(versioned, owner.uid, owner.gid);
    chownSync(dir, owner.uid, owner.gid);
    for (let d = dirname(dir); d !== '/'; d = dirname(d)) {
      const mode = statSync(d).mode & 0o7777;
      if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
    }
  }
  const data = join(dir, '..data');
  const previous = existsSync(data) ? readlinkSync(data) : null;
  const tmpLink = join(dir, '..data_tmp');
  rmSync(tmpLink, { force: true });
  symlinkSync(stamp, tmpLink);
  renameSync(tmpLink, data);
  const out: Record<string, string> = {};
  for (const name of Object.keys(contents)) {
    const link = join(dir, name);
    if (!existsSync(link)) symlinkSync(join('..data', name), link);
    out[name] = link;
  }
  if (previous && previous !== stamp) rmSync(join(dir, previous), { recursive: true, force: true });
  return out;
}
