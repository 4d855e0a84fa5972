/**
 * Key files for pods: a workload's key is readable by its own pod user only, and no CA key is
 * readable by any pod user. Readability is tested by opening the file as that user, so ACLs,
 * parent-directory modes and group membership all count, not just the file's mode bits.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { run, tool } from './exec.ts';

/** Whose file it is: a pod user's ids (`PodUser` fits). */
export interface FileOwner {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Create `dir` (and parents) and give it to `owner`, mode 0700. Ownership and mode are set through a
 * descriptor opened without following symlinks, so a link planted at `dir` cannot redirect the chown.
 */
export function podDir(dir: string, owner: FileOwner): void {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Which of `paths` `owner` can open for reading: one `sh` as that user (no groups, no privileges)
 * tries each. Paths come back in the order given.
 */
export async function readableBy(owner: FileOwner, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const script = 'for f do if (exec <"$f") 2>/dev/null; then printf "%s\\n" "$f"; fi; done';
  const args = [
    `--reuid=${owner.uid}`,
    `--regid=${owner.gid}`,
    '--clear-groups',
    '--no-new-privs',
    '--',
    tool('sh'),
    '-c',
    script,
    'sh',
    ...paths,
  ];
  const out = await run('setpriv', args, `check what ${owner.name} can read`);
  const seen = new Set(out.split('\n').filter(Boolean));
  return paths.filter((p) => seen.has(p));
}

/**
 * Write `content` to `file` owned by `owner` with `mode` (0400 by default), atomically (a temporary
 * file that only root can read until it is handed over, then a rename), and check that the owner
 * can in fact read it: a parent directory it cannot search makes the key useless, so that fails here.
 */
export async function writePodKey(
  file: string,
  content: string | Uint8Array,
  owner: FileOwner,
  mode = 0o400,
): Promise<void> {
  if ((mode & 0o077) !== 0)
    throw new Error(`mode: 0${mode.toString(8)} lets others than ${owner.name} read ${file}`);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  // The directory is the pod user's, who may swap entries in it at any moment: create exclusively,
  // never follow a link, and change owner and mode on the descriptor, not on the name.
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  try {
    const fd = openSync(tmp, flags, 0o600);
    try {
      writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
      fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  if ((await readableBy(owner, [file])).length === 0)
    throw new Error(
      `${file}: written for ${owner.name} (uid ${owner.uid}) but it cannot open it; ` +
        'a parent directory is not searchable by that user (put the key in a podDir)',
    );
}

/** Throw naming the file and the user when any pod user can read any of the CA keys. */
export async function assertCaKeysUnreadable(
  caKeys: readonly string[],
  users: readonly FileOwner[],
): Promise<void> {
  const leaks: string[] = [];
  for (const u of users)
    for (const f of await readableBy(u, caKeys)) leaks.push(`${f} by ${u.name} (uid ${u.uid})`);
  if (leaks.length > 0)
    throw new Error(
      `CA keys readable by pod users: ${leaks.join('; ')}. A CA key must be owned by root, mode 0600, ` +
        'in a directory pod users cannot search.',
    );
}

/**
 * Give other users search (never read) permission on `path` and every directory above it, so a
 * pod user can reach its own files below; what each directory holds stays unlistable to it.
 */
export function searchableUpTo(path: string): void {
  for (let d = path; d !== '/'; d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
  }
}
