/**
 * Running the system tools pods need (ip, nsenter, setpriv, useradd) and the preflight that says
 * what is missing before anything is created.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where the tools live when the caller's PATH lacks the sbin directories (sudo, a login shell). */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Every tool the pod primitives run, with the Debian/Ubuntu package that provides it. */
export const POD_TOOLS = {
  ip: 'iproute2',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  mount: 'mount',
  useradd: 'passwd',
  userdel: 'passwd',
  groupdel: 'passwd',
  getent: 'libc-bin',
  sh: 'dash',
} as const;

/** A tool the pods need. */
export type PodTool = keyof typeof POD_TOOLS;

/** Absolute path of `tool` on PATH or in the system directories, or null when it is not installed. */
export function findTool(tool: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Absolute path of a pod tool; throws naming the package to install. */
export function tool(name: PodTool): string {
  const p = findTool(name);
  if (!p) throw new Error(`pods need \`${name}\`: install the ${POD_TOOLS[name]} package`);
  return p;
}

/** The result of a command that may fail. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a pod tool; never throws for a non-zero exit (the caller decides), only when it cannot start. */
export function attempt(
  name: PodTool,
  args: readonly string[],
  timeoutMs = 15_000,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile(
      tool(name),
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${name} ${args.join(' ')}: ${err.message}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

/** Run a pod tool and return its stdout; throws with the command and its stderr on failure. */
export async function run(name: PodTool, args: readonly string[], what: string): Promise<string> {
  const r = await attempt(name, args);
  if (r.code !== 0)
    throw new Error(`${what}: \`${name} ${args.join(' ')}\` exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Linux capability numbers (linux/capability.h) the pods need, by name. */
const NEEDED_CAPS = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_ADMIN: 12,
  CAP_SYS_ADMIN: 21,
} as const;

/** The names of the needed capabilities missing from a `CapEff:` hex mask. */
export function missingCaps(capEffHex: string): string[] {
  const mask = BigInt(`0x${capEffHex.trim() || '0'}`);
  return Object.entries(NEEDED_CAPS)
    .filter(([, bit]) => (mask & (1n << BigInt(bit))) === 0n)
    .map(([name]) => name);
}

/**
 * Throw unless this process can create pods: the tools are installed, and it has the capabilities
 * (in practice: it runs as root). The message names what is missing and what to do.
 */
export function podPreflight(): void {
  const problems: string[] = [];
  const absent = (Object.keys(POD_TOOLS) as PodTool[]).filter((t) => !findTool(t));
  for (const t of absent) problems.push(`\`${t}\` is not installed (package ${POD_TOOLS[t]})`);
  const status = readFileSync('/proc/self/status', 'utf8');
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  const caps = missingCaps(capEff);
  if (caps.length > 0)
    problems.push(
      `this process lacks ${caps.join(', ')}: pods are network namespaces with users of their ` +
        'own, which only root can create; run it as root (sudo)',
    );
  if (problems.length > 0) throw new Error(`cannot create pods: ${problems.join('; ')}`);
}
