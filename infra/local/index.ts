/**
 * The local stack: the whole Trellis reference architecture on one machine, as real processes, wired
 * from the policy model. `./trellis up` runs it as `pulumi up --stack local`.
 */
import * as pulumi from '@pulumi/pulumi';
import { join } from 'node:path';
import { LocalMeshCa } from '@trellis/components/local/pki';
import { loadConfig } from './config.ts';
import type { StackContext } from './src/context.ts';

const cfg = loadConfig();

const ca = new LocalMeshCa('mesh-ca', {
  trustDomain: cfg.model.trustDomain,
  region: cfg.region,
  dir: join(cfg.stackDir, 'pki'),
});

const ctx: StackContext = {
  stack: cfg.stack,
  region: cfg.region,
  model: cfg.model,
  stackDir: cfg.stackDir,
  runDir: (c) => join(cfg.stackDir, 'run', c),
  pkiDir: (id) => join(cfg.stackDir, 'pki', id),
  ports: cfg.ports,
  ca,
  certValidHours: cfg.certValidHours,
  rotation: cfg.rotation,
};

export const trustBundle = ca.bundleFile;
export const ports = pulumi.output(ctx.ports);
