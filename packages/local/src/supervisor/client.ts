import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkPodLaunch } from '../pods/launch.ts';
import type { SuperviseSpec, SuperviseState } from './spec.ts';

const SUPERVISOR = join(import.meta.dirname, 'supervise.ts');

/**
 * True when a process with this pid exists and has not exited. A zombie (exited, not yet reaped) is
 * not alive: a supervisor killed after its starter exited is an orphan, and PID 1 may reap it only
 * seconds later (measured here: 2–3 s); `kill(pid, 0)` still succeeds on it meanwhile, which once made
 * `pulumi refresh` keep a dead process (docs/local.md).
 */
export function alive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 1) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** Whether `/proc/<pid>/stat` says the process has exited (Z zombie, X dead); false without /proc. */
export function isZombie(pid: number, procRoot = '/proc'): boolean {
  let stat: string;
  try {
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return false; // gone between the two looks, or no /proc: kill(pid, 0) has the last word
  }
  // "pid (comm) S …": comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

/** The supervisor's last written state, or null when there is none. */
export function readState(stateFile: string): SuperviseState | null {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as SuperviseState;
  } catch {
    return null;
  }
}

/** Live status: null when no supervisor is running for this state file (never started, stopped, or killed). */
export function supervisedStatus(stateFile: string): SuperviseState | null {
  const s = readState(stateFile);
  if (!s || !alive(s.supervisorPid) || s.status === 'stopped') return null;
  return s;
}

/**
 * Start `spec` under a detached supervisor (stopping any earlier one for the same state file first)
 * and resolve once the child has been spawned. The supervisor outlives the caller.
 */
export async function startSupervised(spec: SuperviseSpec): Promise<SuperviseState> {
  if (spec.pod) checkPodLaunch(spec.pod, 'pod');
  await stopSupervised(spec.stateFile);
  mkdirSync(dirname(spec.stateFile), { recursive: true });
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const specFile = `${spec.stateFile}.spec.json`;
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  rmSync(spec.stateFile, { force: true });
  const sup = spawn(process.execPath, [SUPERVISOR, specFile], {
    detached: true,
    stdio: 'ignore',
    cwd: spec.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  sup.unref();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = readState(spec.stateFile);
    if (s && s.status !== 'starting') return s;
    if (!alive(sup.pid))
      throw new Error(`supervisor for ${spec.name} exited at once; see ${spec.logFile}`);
    if (Date.now() > deadline)
      throw new Error(`supervisor for ${spec.name} did not start its child in 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stop the supervisor and its child's whole process group; resolves when both are gone. */
export async function stopSupervised(stateFile: string, timeoutMs = 30_000): Promise<void> {
  const s = readState(stateFile);
  if (!s) return;
  if (alive(s.supervisorPid)) {
    process.kill(s.supervisorPid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (alive(s.supervisorPid) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    if (alive(s.supervisorPid)) process.kill(s.supervisorPid, 'SIGKILL');
  }
  // The supervisor may have been SIGKILLed earlier and left its child: take the child's group down too.
  const last = readState(stateFile);
  for (const pid of [s.childPid, last?.childPid]) {
    if (pid && alive(pid)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone between the check and the kill
      }
    }
  }
  for (const f of [stateFile, `${stateFile}.spec.json`, `${stateFile}.tmp`])
    if (existsSync(f)) rmSync(f, { force: true });
}
