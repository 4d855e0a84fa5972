/**
 * The PKI stack: the one offline-style root CA of the mesh, shared by every cluster stack through a
 * StackReference. Run once: `cd infra/k8s/pki && pulumi up --stack root`. Its state holds the root key
 * as a Pulumi secret; restrict who can read this stack (docs/adr/0003-shared-root-ca.md).
 */
import * as pulumi from '@pulumi/pulumi';
import { RootCa } from '@trellis/components/pki/meshCa';

/** Outputs read by the cluster stacks. */
export default async function main(): Promise<Record<string, pulumi.Output<string>>> {
  const cfg = new pulumi.Config('trellis');
  const trustDomain = cfg.require('trustDomain');
  const root = new RootCa('trellis-root', { trustDomain });
  return { rootCertPem: root.certPem, rootKeyPem: pulumi.secret(root.keyPem) };
}
