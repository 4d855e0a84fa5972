/**
 * The `check()` bodies that tools share: probe what is installed, run it once, report what it says.
 * They install nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AssembledInstall } from './assembled.ts';
import { isInstalled } from './cache.ts';
import { tryRun } from './exec.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

/** The fields of a {@link ToolCheck} that come from the tool itself. */
export function toolBase(tool: Tool): Pick<ToolCheck, 'name' | 'pinned' | 'minimum' | 'source'> {
  return { name: tool.name, pinned: tool.pinned, minimum: tool.minimum, source: tool.source };
}

/**
 * Check a tool that is one binary in its install dir: it must be installed, its version command must
 * run, and the version it prints must be at least the tool's minimum.
 */
export async function checkVersionedBinary(
  tool: Tool,
  probe: {
    /** The tool's install dir (`toolDir(name, pinned)`). */
    dir: string;
    bin: string;
    /** The version command's arguments, e.g. `['--version']`. */
    args: readonly string[];
    env?: NodeJS.ProcessEnv;
    /** The version in the command's output, or null. */
    parse: (out: string) => string | null;
  },
): Promise<ToolCheck> {
  const base = toolBase(tool);
  if (!isInstalled(probe.dir) || !existsSync(probe.bin)) {
    return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
  }
  const out = await tryRun(probe.bin, probe.args, probe.env ? { env: probe.env } : {});
  const found = out ? probe.parse(out) : null;
  const ok = found !== null && compareVersions(found, tool.minimum) >= 0;
  const failed = `${tool.name} ${probe.args.join(' ')} failed`;
  return {
    ...base,
    found,
    location: probe.bin,
    runs: found !== null,
    ...(ok ? {} : { problem: found ? `version ${found} is below ${tool.minimum}` : failed }),
  };
}

/**
 * Check a JVM tool assembled from Maven artefacts (assembled.ts): it must be installed, a JDK that
 * suits it must exist, and running `mainArgs` on its classpath must print the pinned version.
 */
export async function checkJvmInstall(
  tool: Tool,
  inst: AssembledInstall | null,
  probe: {
    /** The main class and its arguments that print the version. */
    mainArgs: readonly string[];
    /** How the version command is named in the problem, e.g. `GetVersion`. */
    what: string;
    /** The JDK it needs, for the problem when there is none, e.g. `JDK 17`. */
    jdk: string;
  },
): Promise<ToolCheck> {
  const base = toolBase(tool);
  if (!inst) return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
  const record = join(inst.home, 'install.json');
  const found = existsSync(record)
    ? (JSON.parse(readFileSync(record, 'utf8')) as { version: string }).version
    : null;
  if (!inst.javaHome) {
    return {
      ...base,
      found,
      location: inst.home,
      runs: false,
      problem: `no ${probe.jdk} to run it`,
    };
  }
  const out = await tryRun(join(inst.javaHome, 'bin', 'java'), [
    '-cp',
    inst.classpath,
    ...probe.mainArgs,
  ]);
  const runs = out !== null && out.includes(tool.pinned);
  return {
    ...base,
    found,
    location: inst.home,
    runs,
    ...(runs
      ? {}
      : {
          problem: `${probe.what} did not report ${tool.pinned}: ${(out ?? 'failed').trim().slice(-200)}`,
        }),
  };
}
