/**
 * A server's home directory in a pod (ADR 0012): its config, data and logs belong to the pod's
 * user, and the directories above it let that user through (search, never read).
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { searchableUpTo } from '../pods/keys.ts';

/** Whose the files are: a pod user's ids. */
export interface TreeOwner {
  uid: number;
  gid: number;
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
