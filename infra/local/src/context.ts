import { join } from 'node:path';
import { LocalMeshCa } from '@trellis/components/local/pki';
import type { ValidModel } from '@trellis/policy';
import type { PortName } from './ports.ts';

/** What every module of the local stack gets: the model, where to write, the ports, the Mesh CA. */
export interface StackContext {
  stack: string;
  region: string;
  model: ValidModel;
  /** `<repo>/.trellis/<stack>` */
  stackDir: string;
  /** `<stackDir>/run/<component>`: a LocalProcess's directory. */
  runDir(component: string): string;
  /** `<stackDir>/pki/<identity>`: an identity's certificate files. */
  pkiDir(identity: string): string;
  ports: Record<PortName, number>;
  ca: LocalMeshCa;
  certValidHours: number;
  rotation: number;
}

/** What {@link localContext} needs: everything of the context but the directories and the CA. */
export type ContextInput = Omit<StackContext, 'runDir' | 'pkiDir' | 'ca'>;

/**
 * The stack's Mesh CA (resource `mesh-ca`, files under `<stackDir>/pki`) and the context built around
 * it; the local stack and the component tests' fixture programs share it.
 */
export function localContext(o: ContextInput): StackContext {
  const ca = new LocalMeshCa('mesh-ca', {
    trustDomain: o.model.trustDomain,
    region: o.region,
    dir: join(o.stackDir, 'pki'),
  });
  return {
    ...o,
    runDir: (c) => join(o.stackDir, 'run', c),
    pkiDir: (id) => join(o.stackDir, 'pki', id),
    ca,
  };
}
