import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { run } from './exec.ts';
import { GO_PROXY } from './go.ts';
import { buildFromModule, moduleDir } from './gomodule.ts';
import type { Tool, ToolCheck } from './spec.ts';

// Pinned in packages/local/go-kube/kubernetes/go.mod too (k8s.io/kubernetes v1.37.2 and the k8s.io/* v0.37.2
// replace lines); a bump changes both.
const PINNED = '1.37.2';
const MINIMUM = '1.37.0';
const MODULE = 'k8s.io/kubernetes';

/** The control-plane binaries the harness runs; kubelet and kube-proxy are kwok's business. */
export const KUBE_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
] as const;
export type KubeBinary = (typeof KUBE_BINARIES)[number];

/**
 * What release builds stamp (hack/lib/version.sh in k8s.io/kubernetes): without it `--version` says
 * v0.0.0-master and clients that gate on the server's version (Pulumi's provider among them) misjudge it.
 * `-s -w` drops the symbol table and DWARF as release builds do (hack/lib/golang.sh unless DBG=1): a
 * third smaller binary and a faster link.
 */
export function kubeLdflags(version = PINNED): string {
  const [major, minor] = version.split('.');
  const pkg = 'k8s.io/component-base/version';
  return [
    `-X ${pkg}.gitVersion=v${version}`,
    `-X ${pkg}.gitMajor=${major ?? ''}`,
    `-X ${pkg}.gitMinor=${minor ?? ''}`,
    `-X ${pkg}.gitTreeState=clean`,
    '-s',
    '-w',
  ].join(' ');
}

/** One control-plane binary of the pinned install (`<cache>/tools/kubernetes/<version>/bin/<name>`). */
export function kubeBinary(name: KubeBinary, version = PINNED): string {
  return join(toolDir('kubernetes', version), 'bin', name);
}

/** Parse `kube-apiserver --version` output (`Kubernetes v1.37.2`). */
export function parseKubeVersion(out: string): string | null {
  return /^Kubernetes v(\d+\.\d+\.\d+)\s*$/m.exec(out)?.[1] ?? null;
}

async function install(staging: string, dir: string): Promise<void> {
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  await buildFromModule({
    module: 'kubernetes',
    packages: KUBE_BINARIES.map((b) => `${MODULE}/cmd/${b}`),
    out: `${bin}/`,
    ldflags: kubeLdflags(),
    what: `building ${KUBE_BINARIES.join(', ')} ${PINNED}`,
    installDir: dir,
  });
  for (const name of KUBE_BINARIES) {
    const out = await run(join(bin, name), ['--version'], {
      what: `${name} --version`,
      timeoutMs: 60_000,
    });
    const found = parseKubeVersion(out);
    if (found !== PINNED)
      throw new Error(
        `${name}: the built binary reports ${found ?? out.trim()}, expected ${PINNED}`,
      );
  }
}

/**
 * The Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler), built from
 * `k8s.io/kubernetes` by our module packages/local/go-kube/kubernetes: upstream's go.mod replaces every
 * `k8s.io/*` staging module with `./staging/...`, which its module zip lacks, so ours points them at the
 * published `v0.37.x` releases of the same code instead.
 */
export const kubernetes: Tool = {
  name: 'kubernetes',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${MODULE}@v${PINNED} cmd/{${KUBE_BINARIES.join(',')}} (built from ${moduleDir('kubernetes')})`,
  async ensure(): Promise<string> {
    const dir = toolDir('kubernetes', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return join(dir, 'bin');
  },
  async check(): Promise<ToolCheck> {
    const result = await checkVersionedBinary(this, {
      dir: toolDir('kubernetes', PINNED),
      bin: kubeBinary('kube-apiserver'),
      args: ['--version'],
      parse: parseKubeVersion,
    });
    const missing = KUBE_BINARIES.filter((b) => !existsSync(kubeBinary(b)));
    if (result.found !== null && missing.length > 0)
      return { ...result, runs: false, problem: `missing ${missing.join(', ')}` };
    return result;
  },
};
