import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { run } from './exec.ts';
import { findGo, GO_PROXY, goEnv, goRun, lockOf } from './go.ts';
import { buildFromModule, GO_BUILD_PARALLELISM, moduleDir } from './gomodule.ts';
import { progress } from './log.ts';
import { probeLanguageHost } from './pulumi.ts';
import type { Tool, ToolCheck } from './spec.ts';

/**
 * The provider release: the Go module proxy serves `provider/v4` only as the pseudo-version
 * v4.0.0-20260115033456-f47bc2d6f199, whose commit is the one tagged v4.25.0 (pinned in
 * packages/local/go-kube/provider/go.mod). The npm SDK must be the same release, since it asks the engine
 * for the plugin by version.
 */
const PINNED = '4.25.0';
const MINIMUM = '4.25.0';
const MODULE = 'github.com/pulumi/pulumi-kubernetes/provider/v4';
const MODULE_VERSION = 'v4.0.0-20260115033456-f47bc2d6f199';
const VERSION_VAR = `${MODULE}/pkg/version.Version`;
const BINARY = 'pulumi-resource-kubernetes';

/** The provider plugin of the pinned install (`<cache>/tools/pulumi-resource-kubernetes/<v>/bin/...`). */
export function kubernetesProviderBinary(version = PINNED): string {
  return join(toolDir(BINARY, version), 'bin', BINARY);
}

/**
 * The record an install leaves next to the binary. `go version -m` cannot tell the stamped version: with
 * `-trimpath` Go leaves -ldflags out of the build info.
 */
interface InstallRecord {
  version: string;
  module: string;
}

async function install(staging: string, dir: string): Promise<void> {
  const go = await findGo();
  const what = `building the Pulumi Kubernetes provider ${PINNED}`;
  progress(
    `${what}: generating its schema files, then compiling (a cold build takes tens of minutes)`,
  );
  // Build in a copy of our module: the generated schema files land next to main.go, as upstream's
  // `go generate` writes them, without touching the repository.
  const src = join(staging, 'src');
  cpSync(moduleDir('provider'), src, { recursive: true });
  const upstream = (
    await run(go.bin, ['mod', 'download', '-json', MODULE], {
      what: `go mod download ${MODULE}`,
      cwd: src,
      env: goEnv(),
      timeoutMs: 10 * 60_000,
    })
  ).match(/"Dir":\s*"([^"]+)"/)?.[1];
  if (!upstream) throw new Error(`${BINARY}: go mod download did not name ${MODULE}'s directory`);
  const cmdDir = join(src, 'cmd', BINARY);
  await goRun(
    [
      'run',
      '-p',
      String(GO_BUILD_PARALLELISM),
      '-trimpath',
      '-mod=readonly',
      './cmd/generate',
      PINNED,
      join(upstream, 'cmd', BINARY),
      cmdDir,
    ],
    {
      go,
      cwd: src,
      what: `generating the provider schema ${PINNED}`,
      timeoutMs: 60 * 60_000,
      lock: lockOf(dir),
    },
  );
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  await buildFromModule({
    module: 'provider',
    cwd: src,
    go,
    packages: [`./cmd/${BINARY}`],
    out: join(bin, BINARY),
    ldflags: `-X ${VERSION_VAR}=${PINNED}`,
    what,
    installDir: dir,
  });
  rmSync(src, { recursive: true, force: true });
  const problem = await probeLanguageHost(join(bin, BINARY), 60_000);
  if (problem !== null) throw new Error(`${BINARY}: ${problem}`);
  const record: InstallRecord = { version: PINNED, module: `${MODULE}@${MODULE_VERSION}` };
  writeFileSync(join(staging, 'install.json'), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * The Pulumi Kubernetes provider plugin (`pulumi-resource-kubernetes`), built from its Go module with a main
 * of our own (packages/local/go-kube/provider) that embeds the schema generated as upstream's generate.go does.
 * Pulumi publishes the plugin binary only on GitHub and get.pulumi.com, which are not reachable here.
 */
export const kubernetesProvider: Tool = {
  name: BINARY,
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${MODULE} (v${PINNED} commit; built from ${moduleDir('provider')})`,
  async ensure(): Promise<string> {
    const dir = toolDir(BINARY, PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return kubernetesProviderBinary();
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const bin = kubernetesProviderBinary();
    if (!isInstalled(toolDir(BINARY, PINNED)) || !existsSync(bin))
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    const recordFile = join(toolDir(BINARY, PINNED), 'install.json');
    const found = existsSync(recordFile)
      ? (JSON.parse(readFileSync(recordFile, 'utf8')) as InstallRecord).version
      : null;
    const problem = await probeLanguageHost(bin);
    return {
      ...base,
      found,
      location: bin,
      runs: problem === null,
      ...(problem !== null ? { problem } : found === null ? { problem: 'no install record' } : {}),
    };
  },
};
