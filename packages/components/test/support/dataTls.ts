/**
 * The services' loaders check that the TLS files their environment names exist. A test that loads a
 * k8s service's environment outside a pod gets the same files under a temporary directory instead of
 * the mount path (which only the pod has), with every other value unchanged.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { dataTls } from '../../src/k8s/dataTls.ts';

/** The directories this file's tests made: removed when the test file ends. */
const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `env` with each path under `dataTls.mountPath` moved to a temporary copy of the mount. */
export function withMountedDataTls(env: Readonly<Record<string, string>>): Record<string, string> {
  const root = mkdtempSync(join(tmpdir(), 'trellis-data-tls-'));
  made.push(root);
  const dir = join(root, dataTls.mountPath);
  mkdirSync(dir, { recursive: true });
  for (const file of Object.values(dataTls.files)) writeFileSync(join(dir, file), 'placeholder\n');
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.startsWith(`${dataTls.mountPath}/`) ? join(root, v) : v,
    ]),
  );
}
