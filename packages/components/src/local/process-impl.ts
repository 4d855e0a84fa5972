/**
 * The body of the `LocalProcess` dynamic provider. It runs inside Pulumi's dynamic-provider host, which
 * imports this file by absolute path, so it must not depend on anything the Pulumi program captured.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { searchableUpTo, type PodLaunch } from '@trellis/local/pods';
import { startSupervised, stopSupervised, supervisedStatus } from '@trellis/local/supervisor';

/**
 * How to tell that the process is ready to serve. `netns` probes from inside that network
 * namespace (a pod's private listener on its own 127.0.0.1).
 */
export type ReadyProbe =
  | { kind: 'tcp'; host: string; port: number; netns?: string }
  | { kind: 'http'; url: string; status?: number; netns?: string }
  /**
   * Call `fn(arg)` exported by `module` (absolute path); ready when it resolves truthy. With
   * `netns`, a Node child in that namespace imports the module and calls it (`arg` must be JSON).
   */
  | { kind: 'module'; module: string; fn: string; arg: unknown; netns?: string };

/** Plain inputs as the provider receives them (secrets already unwrapped by the engine). */
export interface ProcessInputs {
  name: string;
  /** The component's directory: state, spec and log live here; files are written below it. */
  dir: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Relative path under `dir` → content. Written before start; mode 0600. */
  files: Record<string, string>;
  ready: ReadyProbe;
  readyTimeoutMs: number;
  stopGraceMs: number;
  /** Remove `dir` (data included) on delete. */
  purgeOnDelete: boolean;
  /** Run in this pod, as its user; `files` and `<dir>/pod` (its cwd) are then the pod user's. */
  pod?: PodLaunch;
  /**
   * Relative paths under `dir` removed before each start: what an earlier layout of the process
   * left there, which it must not find again (or a pod user reach once `dir` is searchable).
   */
  removeBeforeStart?: string[];
}

/** The pod process's own writable directory under its root-owned `dir`. */
export const POD_WORK_DIR = 'pod';

/** Outputs kept in state: no env values and no file contents, only their digest. */
export interface ProcessOutputs {
  name: string;
  dir: string;
  logFile: string;
  command: string;
  args: string[];
  digest: string;
  supervisorPid: number;
  pid: number;
  restarts: number;
  purgeOnDelete: boolean;
}

/** A digest of everything that requires a restart when it changes. */
export function digestOf(i: ProcessInputs): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify([
      i.command,
      i.args,
      Object.entries(i.env).sort(),
      Object.entries(i.files).sort(),
      i.dir,
      // Only when set, so that a stack without pods keeps its digests (no restart on upgrade).
      ...(i.pod !== undefined ? [i.pod] : []),
    ]),
  );
  return h.digest('hex');
}

function stateFile(dir: string): string {
  return join(dir, 'supervisor.json');
}

/** `rel` under `i.dir`; throws naming `what` when it would leave it. */
function inside(i: Pick<ProcessInputs, 'name' | 'dir'>, rel: string, what: string): string {
  const n = normalize(rel).replace(/\/+$/, '');
  if (isAbsolute(n) || n.startsWith('..') || n === '.' || n === '')
    throw new Error(`${i.name}: ${what} '${rel}' must stay inside ${i.dir}`);
  return join(i.dir, n);
}

/** Remove `i.removeBeforeStart` under `i.dir`; throws, removing nothing, if one would leave it. */
export function removeBeforeStart(
  i: Pick<ProcessInputs, 'name' | 'dir' | 'removeBeforeStart'>,
): void {
  const paths = (i.removeBeforeStart ?? []).map((rel) => inside(i, rel, 'removeBeforeStart path'));
  for (const p of paths) rmSync(p, { recursive: true, force: true });
}

function writeFiles(i: ProcessInputs): void {
  for (const [rel, content] of Object.entries(i.files)) {
    const p = inside(i, rel, 'file path');
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content, { mode: 0o600 });
    chmodSync(p, 0o600);
    if (i.pod) for (let d = p; d !== i.dir; d = dirname(d)) chownSync(d, i.pod.uid, i.pod.gid);
  }
}

/**
 * A pod process's directory: `dir` stays root's (the supervisor's state and log live there, and a
 * pod user that could replace them could make `stop` signal any pid), searchable by the pod user;
 * `<dir>/pod` is the pod user's own, its cwd and the one place it writes.
 */
function preparePodDir(i: ProcessInputs & { pod: PodLaunch }): string {
  searchableUpTo(i.dir);
  const work = join(i.dir, POD_WORK_DIR);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  chownSync(work, i.pod.uid, i.pod.gid);
  chmodSync(work, 0o700);
  return work;
}

/**
 * One probe from inside `netns`: a Node child (as root, no pod user needed) runs it there. A
 * module probe's failure comes back as its message (the child's last line of stderr).
 */
function probeInNetns(p: ReadyProbe & { netns: string }): Promise<boolean> {
  const script = `const p = JSON.parse(process.argv[1]);
const done = (ok) => process.exit(ok ? 0 : 1);
if (p.kind === 'module') {
  import(p.module).then((m) => m[p.fn](p.arg)).then(done, (e) => { console.error(e?.message ?? e); done(false); });
} else if (p.kind === 'tcp') {
  const s = require('node:net').connect({ host: p.host, port: p.port });
  s.setTimeout(2000); s.once('connect', () => done(true)); s.once('error', () => done(false));
  s.once('timeout', () => done(false));
} else fetch(p.url, { signal: AbortSignal.timeout(3000) }).then((r) => done(r.status === (p.status ?? 200)), () => done(false));`;
  return new Promise((resolve, reject) =>
    execFile(
      'nsenter',
      [`--net=/run/netns/${p.netns}`, '--', process.execPath, '-e', script, JSON.stringify(p)],
      // A module probe loads its module (TypeScript) in a fresh Node first: give it longer.
      { timeout: p.kind === 'module' ? 15_000 : 5_000 },
      (err, _stdout, stderr) => {
        const why = stderr.trim().split('\n').at(-1);
        if (err !== null && p.kind === 'module' && why) reject(new Error(why));
        else resolve(err === null);
      },
    ),
  );
}

async function probeOnce(p: ReadyProbe): Promise<boolean> {
  if (p.netns !== undefined) return probeInNetns({ ...p, netns: p.netns });
  switch (p.kind) {
    case 'tcp':
      return new Promise((resolve) => {
        const s = connect({ host: p.host, port: p.port });
        s.setTimeout(2_000);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
        s.once('timeout', () => {
          s.destroy();
          resolve(false);
        });
      });
    case 'http': {
      const res = await fetch(p.url, { signal: AbortSignal.timeout(3_000) });
      return res.status === (p.status ?? 200);
    }
    case 'module': {
      const m = (await import(p.module)) as Record<string, (arg: unknown) => Promise<unknown>>;
      const fn = m[p.fn];
      if (typeof fn !== 'function') throw new Error(`probe ${p.fn} is not exported by ${p.module}`);
      return Boolean(await fn(p.arg));
    }
  }
}

async function waitReady(i: ProcessInputs, logFile: string): Promise<void> {
  const deadline = Date.now() + i.readyTimeoutMs;
  let last = 'not ready';
  for (;;) {
    if (!supervisedStatus(stateFile(i.dir)))
      throw new Error(`${i.name}: supervisor is gone; see ${logFile}`);
    try {
      if (await probeOnce(i.ready)) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${i.name} was not ready after ${Math.round(i.readyTimeoutMs / 1000)} s (${last}); see ${logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Write files, start under a supervisor, wait for readiness. */
export async function start(i: ProcessInputs): Promise<ProcessOutputs> {
  mkdirSync(i.dir, { recursive: true, mode: 0o700 });
  removeBeforeStart(i);
  writeFiles(i);
  const cwd = i.pod ? preparePodDir({ ...i, pod: i.pod }) : i.dir;
  const logFile = join(i.dir, 'process.log');
  const st = await startSupervised({
    name: i.name,
    command: i.command,
    args: i.args,
    env: i.env,
    cwd,
    logFile,
    stateFile: stateFile(i.dir),
    stopGraceMs: i.stopGraceMs,
    ...(i.pod ? { pod: i.pod } : {}),
  });
  try {
    await waitReady(i, logFile);
  } catch (err) {
    await stopSupervised(stateFile(i.dir));
    throw err;
  }
  return {
    name: i.name,
    dir: i.dir,
    logFile,
    command: i.command,
    args: i.args,
    digest: digestOf(i),
    supervisorPid: st.supervisorPid,
    pid: st.childPid ?? 0,
    restarts: 0,
    purgeOnDelete: i.purgeOnDelete,
  };
}

/**
 * Remove `dir` and then up to `levels` of its parents while they are empty, so that destroying a stack
 * leaves no empty `run/` or `pki/` behind. A non-empty directory stops the walk.
 */
export function removeWithEmptyParents(dir: string, levels = 2): void {
  rmSync(dir, { recursive: true, force: true });
  let d = dir;
  for (let i = 0; i < levels; i++) {
    d = dirname(d);
    try {
      rmdirSync(d);
    } catch {
      return; // not empty, or already gone
    }
  }
}

/** Stop the process (and its whole group); purge its directory when asked. */
export async function stop(o: Pick<ProcessOutputs, 'dir' | 'purgeOnDelete'>): Promise<void> {
  await stopSupervised(stateFile(o.dir));
  if (o.purgeOnDelete) removeWithEmptyParents(o.dir);
}

/** Refresh: the live view, or null when the supervisor is gone (the engine then drops the resource). */
export function observe(o: ProcessOutputs): ProcessOutputs | null {
  const st = supervisedStatus(stateFile(o.dir));
  if (!st) return null;
  return { ...o, supervisorPid: st.supervisorPid, pid: st.childPid ?? 0, restarts: st.restarts };
}
