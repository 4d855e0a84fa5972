/**
 * A server's home directory in a pod (ADR 0012): its config, data and logs belong to the pod's
 * user, and the directories above it let that user through (search, never read).
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Whose the files are: a pod user's ids. */
export interface TreeOwner {
  uid: number;
  gid: number;
}

/**
 * Give other users search (never read) permission on `path` and every directory above it, so a
 * pod user reaches its own directory below; what each one holds stays unlistable to it.
 */
export function searchableUpTo(path: string): void {
  for (let d = path; d !== '/'; d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
  }
}

/**
 * Make `home` (and its parent, mode 0700 when new) and hand it with everything below to `owner`:
 * `home` itself 0700. Symlinks are never followed (lchown), so a link below cannot redirect it.
 */
export function givePodHome(home: string, owner: TreeOwner): void {
  mkdirSync(dirname(home), { recursive: true, mode: 0o700 });
  searchableUpTo(dirname(home));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chownTree(home, owner);
  chmodSync(home, 0o700);
}

/** lchown `path` and everything below it to `owner`. */
export function chownTree(path: string, owner: TreeOwner): void {
  const st = lstatSync(path);
  if (st.isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), owner);
  if (st.uid !== owner.uid || st.gid !== owner.gid) {
    if (st.isSymbolicLink()) return; // lchown of a link changes nothing anyone reads
    chownSync(path, owner.uid, owner.gid);
  }
}
