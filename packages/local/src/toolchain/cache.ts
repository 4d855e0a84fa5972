import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { progress } from './log.ts';

/**
 * The per-user tool cache, outside the repo so that every clone reuses it.
 * `TRELLIS_CACHE` wins; then `$XDG_CACHE_HOME/trellis`; then `~/.cache/trellis`.
 */
export function cacheRoot(): string {
  const env = process.env.TRELLIS_CACHE;
  if (env) return env;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'trellis');
}

/** Where one version of one tool lives: `<cache>/tools/<name>/<version>`. */
export function toolDir(name: string, version: string): string {
  return join(cacheRoot(), 'tools', name, version);
}

const DONE_MARK = '.trellis-complete';

/** True when `dir` holds a finished install (the marker is written last). */
export function isInstalled(dir: string): boolean {
  return existsSync(join(dir, DONE_MARK));
}

/**
 * Install into `dir` atomically: `build` fills a staging dir, which is renamed into place and marked
 * complete only when `build` succeeds. A crash leaves no half-installed tool that looks finished.
 * A lock dir serialises concurrent installs of the same tool. It names its owner (pid and the
 * process's start time), so a lock left by a killed installer is taken over at once rather than
 * after 30 minutes; a waiter says what it waits for.
 */
export async function installAtomically(
  dir: string,
  build: (staging: string) => Promise<void>,
): Promise<void> {
  if (isInstalled(dir)) return;
  const lock = `${dir}.lock`;
  mkdirSync(join(dir, '..'), { recursive: true });
  await acquire(lock);
  try {
    if (isInstalled(dir)) return;
    const staging = `${dir}.staging-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    try {
      await build(staging);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      throw err;
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    writeFileSync(join(dir, DONE_MARK), new Date().toISOString());
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** This process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or null. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const OWNER = 'owner';

/** The owner a lock dir names, and whether that process still runs (same pid, same start time). */
export function lockOwner(lock: string): { pid: number; alive: boolean } | null {
  let text: string;
  try {
    text = readFileSync(join(lock, OWNER), 'utf8');
  } catch {
    return null;
  }
  const [pid, started] = text.trim().split(' ');
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return null;
  return { pid: n, alive: started !== undefined && startTime(n) === started };
}

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + 45 * 60_000;
  let said = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, OWNER), `${process.pid} ${startTime(process.pid) ?? ''}\n`);
      return;
    } catch {
      try {
        const owner = lockOwner(lock);
        const age = Date.now() - statSync(lock).mtimeMs;
        // A dead owner: take over now. No owner file: a lock being written this instant, or one from
        // an older Trellis: stale after 30 minutes.
        if ((owner !== null && !owner.alive) || (owner === null && age > 30 * 60_000)) {
          progress(
            `taking over the install lock ${lock}: ${owner ? `its owner, pid ${owner.pid}, is gone` : 'it is older than 30 min'}`,
          );
          rmSync(lock, { recursive: true, force: true });
          continue;
        }
        if (!said) {
          said = true;
          progress(
            `waiting for another install of ${basename(dirname(lock))} ${basename(lock, '.lock')}` +
              `${owner ? ` (pid ${owner.pid})` : ''} to finish; lock ${lock}`,
          );
        }
      } catch {
        // the other installer finished between our calls
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for install lock ${lock}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Make `link` a symlink to `target`: nothing to do when it already is one; otherwise a new link is
 * renamed over it (atomic for a file or link in the way; a directory in the way is removed first).
 */
export function ensureSymlink(target: string, link: string): void {
  try {
    const st = lstatSync(link);
    if (st.isSymbolicLink() && readlinkSync(link) === target) return;
    if (st.isDirectory()) rmSync(link, { recursive: true, force: true });
  } catch {
    // nothing there yet
  }
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}
