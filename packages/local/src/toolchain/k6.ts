import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { run } from './exec.ts';
import { findGo, GO_PROXY, goEnv, goRun, lockOf } from './go.ts';
import { progress } from './log.ts';
import type { Tool, ToolCheck } from './spec.ts';

const PINNED = '1.8.1';
// k6 1.0 is the first release with the stable v1 options, summary and TypeScript support we write against.
const MINIMUM = '1.0.0';
const MODULE = 'go.k6.io/k6';

/** The k6 binary of the pinned install (`<cache>/tools/k6/<version>/bin/k6`). */
export function k6Binary(version = PINNED): string {
  return join(toolDir('k6', version), 'bin', 'k6');
}

/** Parse `k6 version` output (`k6 v1.8.1 (commit/..., go1.26.8, linux/amd64)`). */
export function parseK6Version(out: string): string | null {
  return /\bk6 v(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? null;
}

async function install(staging: string, dir: string): Promise<void> {
  const go = await findGo();
  progress(
    `building k6 ${PINNED} from source with Go ${go.version} (${MODULE}@v${PINNED} from ${GO_PROXY})`,
  );
  const bin = join(staging, 'bin');
  mkdirSync(bin);
  // `go install module@version` ignores any go.mod around it and builds exactly the module's own pins.
  await goRun(['install', '-trimpath', `${MODULE}@v${PINNED}`], {
    go,
    cwd: staging,
    env: goEnv({ GOBIN: bin }),
    what: `building k6 ${PINNED}`,
    timeoutMs: 60 * 60_000,
    lock: lockOf(dir),
  });
  const out = await run(join(bin, 'k6'), ['version'], {
    what: 'k6 version',
    timeoutMs: 60_000,
    env: k6RunEnv(),
  });
  const found = parseK6Version(out);
  if (found !== PINNED)
    throw new Error(`k6: the built binary reports ${found ?? out.trim()}, expected ${PINNED}`);
}

/** k6 sends an anonymous usage report on every run unless told not to; Trellis runs on loopback only. */
function k6RunEnv(): NodeJS.ProcessEnv {
  return { ...process.env, K6_NO_USAGE_REPORT: 'true' };
}

/** Install k6 if needed; return the binary and the environment to run it with. */
export async function k6Env(): Promise<{ bin: string; env: NodeJS.ProcessEnv }> {
  return { bin: await k6.ensure(), env: k6RunEnv() };
}

/** k6, built from source with `go install` (Grafana publishes its binaries only on GitHub). */
export const k6: Tool = {
  name: 'k6',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${MODULE}@v${PINNED} (go install)`,
  async ensure(): Promise<string> {
    const dir = toolDir('k6', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return k6Binary();
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('k6', PINNED),
      bin: k6Binary(),
      args: ['version'],
      env: k6RunEnv(),
      parse: parseK6Version,
    });
  },
};
