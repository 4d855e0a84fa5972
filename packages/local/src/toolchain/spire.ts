/**
 * SPIRE (spire-server and spire-agent), built from source from its Go module: the project publishes binaries
 * only on GitHub, and the module proxy serves the source. Built from our module packages/local/go-kube/spire,
 * whose go.mod pins v1.13.3 and names both commands as `tool`s. Not yet part of `./trellis up` (ADR 0030):
 * the SPIRE evaluation test builds it on demand.
 */
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { run } from './exec.ts';
import { GO_PROXY } from './go.ts';
import { buildFromModule, moduleDir } from './gomodule.ts';
import type { Tool, ToolCheck } from './spec.ts';

// Pinned in packages/local/go-kube/spire/go.mod too; a bump changes both.
const PINNED = '1.13.3';
const MINIMUM = '1.13.3';
const MODULE = 'spire';
/** The two commands the module builds. */
export const SPIRE_BINARIES = ['spire-server', 'spire-agent'] as const;
export type SpireBinary = (typeof SPIRE_BINARIES)[number];

/** One SPIRE binary of the pinned install (`<cache>/tools/spire/<version>/bin/<name>`). */
export function spireBinary(name: SpireBinary, version = PINNED): string {
  return join(toolDir('spire', version), 'bin', name);
}

/**
 * Parse `spire-server --version` / `spire-agent --version` output (`1.13.3`): the version we stamp with
 * `-ldflags -X` (without it SPIRE reports `1.13.3-dev-unk`).
 */
export function parseSpireVersion(out: string): string | null {
  return /^(\d+\.\d+\.\d+)\s*$/m.exec(out)?.[1] ?? null;
}

async function install(staging: string, dir: string): Promise<void> {
  const bin = join(staging, 'bin');
  await buildFromModule({
    module: MODULE,
    packages: SPIRE_BINARIES.map((b) => `github.com/spiffe/spire/cmd/${b}`),
    out: `${bin}/`,
    // SPIRE's own Makefile links this way (go_ldflags); the tag stamps the version `--version` reports.
    ldflags: `-s -w -X github.com/spiffe/spire/pkg/common/version.gittag=${PINNED}`,
    // The server's default datastore is SQLite through mattn/go-sqlite3, behind `//go:build cgo`: without
    // cgo it fails at start with "sqlite3 is not a supported dialect when CGO is not enabled".
    cgo: true,
    what: `building SPIRE ${PINNED}`,
    installDir: dir,
  });
  for (const name of SPIRE_BINARIES) {
    const out = await run(join(bin, name), ['--version'], {
      what: `${name} --version`,
      timeoutMs: 60_000,
    });
    const found = parseSpireVersion(out);
    if (found !== PINNED)
      throw new Error(
        `${name}: the built binary reports ${found ?? out.trim()}, expected ${PINNED}`,
      );
  }
}

/** SPIRE, evaluated as the local SPIFFE implementation (ADR 0030). */
export const spire: Tool = {
  name: 'spire',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} github.com/spiffe/spire@v${PINNED} (built from ${moduleDir(MODULE)})`,
  async ensure(): Promise<string> {
    const dir = toolDir('spire', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return spireBinary('spire-server');
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('spire', PINNED),
      bin: spireBinary('spire-server'),
      args: ['--version'],
      parse: parseSpireVersion,
    });
  },
};
