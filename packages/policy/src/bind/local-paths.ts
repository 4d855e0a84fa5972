/** Where a local stack's files are: its directories, and the SVID files the Mesh CA writes. */
import { svidFiles } from '@trellis/contracts';
import type { SvidLocation } from './types.ts';

/** The directories of a local stack under `stackDir`. */
export function localPaths(stackDir: string) {
  const root = stackDir.replace(/\/+$/, '');
  return {
    /** `<stackDir>/pki`: the Mesh CA's files. */
    pki: `${root}/pki`,
    /** `<stackDir>/pki/<identity>`: one identity's certificate files. */
    pkiDir: (identity: string) => `${root}/pki/${identity}`,
    /** `<stackDir>/run/<component>`: one process's directory. */
    runDir: (component: string) => `${root}/run/${component}`,
  };
}

/** The SVID files in `dir`, as the Mesh CA writes them. */
export const svidAt = (dir: string): SvidLocation => {
  const [cert, key, bundle] = [svidFiles.cert, svidFiles.key, svidFiles.bundle].map(
    (f) => `${dir}/${f}`,
  ) as [string, string, string];
  return { kind: 'files', dir, cert, key, bundle };
};
