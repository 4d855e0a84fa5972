import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { run } from './exec.ts';
import { findGo, GO_PROXY, goEnv, goRun, lockOf } from './go.ts';
import { GO_BUILD_PARALLELISM } from './gomodule.ts';
import { progress } from './log.ts';
import type { Tool, ToolCheck } from './spec.ts';

const PINNED = '0.8.0';
const MINIMUM = '0.8.0';
const MODULE = 'sigs.k8s.io/kwok';

/**
 * The Stage files kwokctl gives a cluster by default (pkg/kwokctl/runtime/cluster.go in sigs.k8s.io/kwok):
 * nodes become Ready and keep a lease, pods become Ready and finish or go away. Copied verbatim from the
 * module into the install, so the stages match the binary.
 */
export const KWOK_STAGE_FILES = [
  'kustomize/stage/node/fast/node-initialize.yaml',
  'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'kustomize/stage/pod/fast/pod-ready.yaml',
  'kustomize/stage/pod/fast/pod-complete.yaml',
  'kustomize/stage/pod/fast/pod-delete.yaml',
] as const;

/** The kwok binary of the pinned install (`<cache>/tools/kwok/<version>/bin/kwok`). */
export function kwokBinary(version = PINNED): string {
  return join(toolDir('kwok', version), 'bin', 'kwok');
}

/** The directory holding {@link KWOK_STAGE_FILES} (by base name) of the pinned install. */
export function kwokStagesDir(version = PINNED): string {
  return join(toolDir('kwok', version), 'stages');
}

/** Parse `kwok --version` output (`kwok version v0.8.0`). */
export function parseKwokVersion(out: string): string | null {
  return /^kwok version v(\d+\.\d+\.\d+)/m.exec(out)?.[1] ?? null;
}

async function install(staging: string, dir: string): Promise<void> {
  const go = await findGo();
  progress(`building kwok ${PINNED} with Go ${go.version} (${MODULE}@v${PINNED} from ${GO_PROXY})`);
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  // kwok's go.mod has no replace lines, so `go install module@version` builds exactly its own pins.
  await goRun(
    ['install', '-p', String(GO_BUILD_PARALLELISM), '-trimpath', `${MODULE}/cmd/kwok@v${PINNED}`],
    {
      go,
      cwd: staging,
      env: goEnv({ GOBIN: bin }),
      what: `building kwok ${PINNED}`,
      timeoutMs: 60 * 60_000,
      lock: lockOf(dir),
    },
  );
  const moduleSrc = (
    await run(go.bin, ['mod', 'download', '-json', `${MODULE}@v${PINNED}`], {
      what: `go mod download ${MODULE}@v${PINNED}`,
      cwd: staging,
      env: goEnv(),
      timeoutMs: 10 * 60_000,
    })
  ).match(/"Dir":\s*"([^"]+)"/)?.[1];
  if (!moduleSrc) throw new Error(`kwok: go mod download did not name the module's directory`);
  const stages = join(staging, 'stages');
  mkdirSync(stages);
  for (const f of KWOK_STAGE_FILES) {
    const to = join(stages, f.split('/').pop()!);
    copyFileSync(join(moduleSrc, f), to);
    chmodSync(to, 0o644); // the module cache is read-only; the copy need not be
  }
  const out = await run(join(bin, 'kwok'), ['--version'], {
    what: 'kwok --version',
    timeoutMs: 60_000,
  });
  const found = parseKwokVersion(out);
  if (found !== PINNED)
    throw new Error(`kwok: the built binary reports ${found ?? out.trim()}, expected ${PINNED}`);
}

/**
 * kwok, the fake kubelet: it marks nodes and pods Ready so Deployments and StatefulSets converge without
 * containers. Built with `go install` (its releases are on GitHub only), plus the default Stage files.
 */
export const kwok: Tool = {
  name: 'kwok',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${MODULE}/cmd/kwok@v${PINNED} (go install) + its default stages`,
  async ensure(): Promise<string> {
    const dir = toolDir('kwok', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return kwokBinary();
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('kwok', PINNED),
      bin: kwokBinary(),
      args: ['--version'],
      parse: parseKwokVersion,
    });
  },
};
