import * as pulumi from '@pulumi/pulumi';
import { RootCa } from './meshCa.ts';
import type { CaMaterial } from './meshCa.ts';

/** Where a cluster stack gets the shared root CA from. */
export type RootSource =
  /** The root lives in its own stack (infra/k8s/pki): `rootCertPem` and secret `rootKeyPem` outputs. */
  | { source: 'stack'; stack: string }
  /** A root made in this stack: only for a single-cluster dev environment. */
  | { source: 'self-signed' };

/**
 * The shared root: read from the PKI stack through a StackReference (so prod-us and prod-eu sign their
 * intermediates with the same root), or made here for dev. See docs/adr/0003-shared-root-ca.md.
 */
export function sharedRoot(
  name: string,
  root: RootSource,
  trustDomain: string,
  opts?: pulumi.ComponentResourceOptions,
): CaMaterial {
  if (root.source === 'self-signed') {
    const ca = new RootCa(name, { trustDomain }, opts);
    return { certPem: ca.certPem, keyPem: ca.keyPem };
  }
  if (!/^[^/\s]+\/[^/\s]+\/[^/\s]+$/.test(root.stack)) {
    throw new Error(`rootCa.stack must be <org>/<project>/<stack>, got "${root.stack}"`);
  }
  const ref = new pulumi.StackReference(name, { name: root.stack }, opts);
  return {
    certPem: ref.requireOutput('rootCertPem') as pulumi.Output<string>,
    keyPem: pulumi.secret(ref.requireOutput('rootKeyPem') as pulumi.Output<string>),
  };
}
