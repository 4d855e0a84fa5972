import type { LocalMeshCa } from '@trellis/components/local/pki';
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
