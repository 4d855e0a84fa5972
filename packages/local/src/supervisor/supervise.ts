/**
 * A tiny process supervisor, one per component: `node supervise.ts <spec.json>`.
 * It runs the child in its own process group, restarts it with exponential backoff when it crashes
 * (as kubelet does), and on SIGTERM stops the child's whole group and exits. It runs detached from
 * whoever started it (the Pulumi dynamic provider, a test), so components outlive `pulumi up`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { podCommand } from '../pods/launch.ts';
import type { SuperviseSpec, SuperviseState } from './spec.ts';

const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as SuperviseSpec;
const backoff0 = spec.backoffMs ?? 1_000;
const maxBackoff = spec.maxBackoffMs ?? 30_000;
const healthyAfter = spec.healthyAfterMs ?? 60_000;
const grace = spec.stopGraceMs ?? 15_000;

const state: SuperviseState = {
  name: spec.name,
  supervisorPid: process.pid,
  childPid: null,
  status: 'starting',
  restarts: 0,
  startedAt: new Date().toISOString(),
  lastExit: null,
};
let child: ChildProcess | null = null;
let stopping = false;
let delay = backoff0;
let restartTimer: NodeJS.Timeout | null = null;

function save(): void {
  const tmp = `${spec.stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(state));
  renameSync(tmp, spec.stateFile);
}

function log(msg: string): void {
  const fd = openSync(spec.logFile, 'a');
  writeFileSync(fd, `${new Date().toISOString()} [supervisor ${spec.name}] ${msg}\n`);
  closeSync(fd);
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is already gone
  }
}

function startChild(): void {
  const fd = openSync(spec.logFile, 'a');
  const started = Date.now();
  // nsenter and setpriv exec in turn, so the pid (and process group) is still the command's.
  const argv = spec.pod
    ? podCommand(spec.pod, spec.command, spec.args)
    : { command: spec.command, args: spec.args };
  const c = spawn(argv.command, argv.args, {
    cwd: spec.cwd,
    env: spec.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  child = c;
  state.childPid = c.pid ?? null;
  state.status = 'running';
  save();
  c.on('error', (err) => log(`could not start ${spec.command}: ${err.message}`));
  c.on('exit', (code, signal) => {
    if (c.pid) killGroup(c.pid, 'SIGKILL'); // no orphaned grandchildren
    state.lastExit = { code, signal, at: new Date().toISOString() };
    state.childPid = null;
    child = null;
    if (stopping) return;
    if (Date.now() - started > healthyAfter) delay = backoff0;
    state.status = 'backoff';
    state.restarts += 1;
    save();
    log(`child exited (${code ?? signal}); restart #${state.restarts} in ${delay} ms`);
    restartTimer = setTimeout(startChild, delay);
    delay = Math.min(delay * 2, maxBackoff);
  });
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  if (restartTimer) clearTimeout(restartTimer);
  state.status = 'stopping';
  save();
  const c = child;
  const done = (): void => {
    state.status = 'stopped';
    state.childPid = null;
    save();
    process.exit(0);
  };
  if (!c?.pid) return done();
  const pid = c.pid;
  killGroup(pid, 'SIGTERM');
  const hard = setTimeout(() => killGroup(pid, 'SIGKILL'), grace);
  c.once('exit', () => {
    clearTimeout(hard);
    done();
  });
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => undefined); // survive the terminal that started `pulumi up` closing
startChild();
