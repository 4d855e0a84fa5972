/**
 * Running one command inside a pod, as the pod's user, to completion: how the tests and the per-hop
 * probe act from inside a pod without opening it (the pod's private listeners stay on its loopback).
 */
import { spawn } from 'node:child_process';
import { checkPodLaunch, podCommand, type PodLaunch } from './launch.ts';

/** What {@link runInPod} gives back; a non-zero exit is a result, not an error. */
export interface PodRun {
  /** The exit code; 124 when the run was stopped at its timeout, 128 + n for signal n. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runInPod}. */
export interface PodRunOptions {
  /** Written to the command's stdin, then closed (e.g. key material it may not read from disk). */
  input?: string;
  /** Stop the command (SIGKILL) after this long. @default 60000 */
  timeoutMs?: number;
  /** The command's environment. @default `PATH` only */
  env?: NodeJS.ProcessEnv;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2 };

/**
 * Run `command args…` in `pod` (its network namespace, as its user, through the pod launcher) and
 * wait for it. Only `PATH` is passed by default: the caller's environment (which may hold secrets)
 * never reaches a pod unless given. Rejects only when the pod is not usable or the command cannot
 * start; a non-zero exit is a result.
 */
export async function runInPod(
  pod: PodLaunch,
  command: string,
  args: readonly string[],
  o: PodRunOptions = {},
): Promise<PodRun> {
  checkPodLaunch(pod); // a missing namespace or a root id rejects, naming the field
  const argv = podCommand(pod, command, args);
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(argv.command, argv.args, {
      env: o.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`run in pod ${pod.netns}: ${command}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const bySignal = signal ? 128 + (SIGNALS[signal] ?? 0) : 1;
      resolve({ code: timedOut ? 124 : (code ?? bySignal), stdout, stderr });
    });
    // A command that never reads its stdin closes the pipe early: that is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });
}
