import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { run } from './exec.ts';
import { GO_PROXY } from './go.ts';
import { buildFromModule, moduleDir } from './gomodule.ts';
import type { Tool, ToolCheck } from './spec.ts';

// Pinned in packages/local/go-kube/etcd/go.mod too; a bump changes both.
const PINNED = '3.7.4';
// The 3.7 line is the one Kubernetes 1.37 is tested against (k8s.io/kubernetes requires etcd client 3.7).
const MINIMUM = '3.7.0';
const PACKAGE = 'go.etcd.io/etcd/server/v3';

/** The etcd binary of the pinned install (`<cache>/tools/etcd/<version>/bin/etcd`). */
export function etcdBinary(version = PINNED): string {
  return join(toolDir('etcd', version), 'bin', 'etcd');
}

/** Parse `etcd --version` output (`etcd Version: 3.7.4`). */
export function parseEtcdVersion(out: string): string | null {
  return /^etcd Version: (\d+\.\d+\.\d+)/m.exec(out)?.[1] ?? null;
}

async function install(staging: string, dir: string): Promise<void> {
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  await buildFromModule({
    module: 'etcd',
    packages: [PACKAGE],
    out: join(bin, 'etcd'),
    what: `building etcd ${PINNED}`,
    installDir: dir,
  });
  const out = await run(join(bin, 'etcd'), ['--version'], {
    what: 'etcd --version',
    timeoutMs: 60_000,
  });
  const found = parseEtcdVersion(out);
  if (found !== PINNED)
    throw new Error(`etcd: the built binary reports ${found ?? out.trim()}, expected ${PINNED}`);
}

/**
 * etcd, built from source from its Go module (the project publishes binaries only on GitHub; Debian's
 * etcd-server is older than Kubernetes 1.37 wants). Built from our module packages/local/go-kube/etcd because
 * etcd's server module replaces its siblings with relative paths.
 */
export const etcd: Tool = {
  name: 'etcd',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${PACKAGE}@v${PINNED} (built from ${moduleDir('etcd')})`,
  async ensure(): Promise<string> {
    const dir = toolDir('etcd', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return etcdBinary();
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('etcd', PINNED),
      bin: etcdBinary(),
      args: ['--version'],
      parse: parseEtcdVersion,
    });
  },
};
