import {
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

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
 * A lock dir serialises concurrent installs of the same tool (stale after 30 minutes).
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

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + 45 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30 * 60_000)
          rmSync(lock, { recursive: true, force: true });
      } catch {
        // the other installer finished between our two calls
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
