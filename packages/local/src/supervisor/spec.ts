import type { PodLaunch } from '../pods/launch.ts';

/** What the supervisor runs: written as JSON next to the state file, so a restart survives the caller. */
export interface SuperviseSpec {
  name: string;
  command: string;
  args: string[];
  /** Full environment of the child (the supervisor does not inherit the caller's). */
  env: Record<string, string>;
  cwd: string;
  /** Child stdout/stderr are appended here. */
  logFile: string;
  /** The supervisor keeps its state here (JSON, rewritten on every change). */
  stateFile: string;
  /** Grace period between SIGTERM and SIGKILL when stopping. @default 15_000 */
  stopGraceMs?: number;
  /** First restart delay; doubles per crash up to `maxBackoffMs`, as kubelet's CrashLoopBackOff. @default 1_000 */
  backoffMs?: number;
  /** @default 30_000 */
  maxBackoffMs?: number;
  /** A child that ran this long without crashing resets the backoff. @default 60_000 */
  healthyAfterMs?: number;
  /**
   * Run the child inside this pod (its network namespace, as its user, without privileges) instead
   * of as the supervisor's own user in the root namespace. `cwd` and `logFile` are opened by the
   * supervisor, so they need not be reachable by the pod's user; the command itself must be.
   * @default undefined (no pod)
   */
  pod?: PodLaunch;
}

/** The supervisor's view of its child. */
export interface SuperviseState {
  name: string;
  supervisorPid: number;
  childPid: number | null;
  status: 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';
  restarts: number;
  startedAt: string;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
}
