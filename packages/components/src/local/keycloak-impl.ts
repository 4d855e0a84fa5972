/**
 * The bodies of the local Keycloak's dynamic providers: a generated secret, and the readiness probe of
 * the supervised server. Imported by absolute path inside Pulumi's dynamic-provider host (see
 * process.ts for why).
 */
import { randomBytes } from 'node:crypto';
import { probeKeycloak } from '@trellis/local/harness';

/** Inputs of a generated secret. */
export interface SecretInputs {
  /** Random bytes before base64url encoding. */
  bytes: number;
}

/** Outputs of a generated secret; `value` is marked secret by the resource. */
export interface SecretOutputs {
  bytes: number;
  value: string;
}

/** A new random secret: `bytes` random bytes, base64url (URL-, header- and shell-safe). */
export function generate(i: SecretInputs): SecretOutputs {
  if (!Number.isInteger(i.bytes) || i.bytes < 16 || i.bytes > 256)
    throw new Error(`bytes must be an integer in [16, 256], got ${i.bytes}`);
  return { bytes: i.bytes, value: randomBytes(i.bytes).toString('base64url') };
}

/**
 * Where the readiness probe looks: the management interface and the realm where the server
 * listens (in a pod, the probe runs inside it).
 */
export interface KeycloakProbe {
  managementUrl: string;
  /** `https://<listen address>:<port>/realms/<realm>`: the realm as the server itself serves it. */
  realmUrl: string;
  /** The roots the server certificate must chain to (the Mesh CA's). */
  caFile: string;
}

/**
 * Readiness (LocalProcess `module` probe): health UP and the realm's discovery document served, both
 * over TLS verified against `caFile`.
 */
export function probe(p: KeycloakProbe): Promise<boolean> {
  return probeKeycloak(p.managementUrl, p.realmUrl, p.caFile);
}
