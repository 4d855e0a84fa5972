/**
 * One unprivileged system user per pod, as a Kubernetes pod gets its own runAsUser: it owns the
 * pod's key, and no other pod's user can read it. Users carry a GECOS mark naming stack and pod, so
 * cleanup removes only what Trellis made, never a real account that happens to share a name.
 */
import { attempt, findTool, run } from './exec.ts';
import { podUserComment, podUserCommentPrefix, podUserName } from './names.ts';

/** A pod's user as /etc/passwd has it. */
export interface PodUser {
  name: string;
  uid: number;
  gid: number;
  /** GECOS: `trellis pod <stack>/<pod>`. */
  comment: string;
}

function parsePasswd(line: string): PodUser | null {
  const [name, , uid, gid, comment] = line.split(':');
  if (!name || uid === undefined || gid === undefined) return null;
  return { name, uid: Number(uid), gid: Number(gid), comment: comment ?? '' };
}

/** The passwd entry of `name`, or null when there is none. */
export async function getUser(name: string): Promise<PodUser | null> {
  const r = await attempt('getent', ['passwd', name]);
  if (r.code === 2) return null; // getent: key not found
  if (r.code !== 0) throw new Error(`getent passwd ${name} exited ${r.code}: ${r.stderr.trim()}`);
  return parsePasswd(r.stdout.trim());
}

/** Every pod user of the stack, found by its GECOS mark. */
export async function listPodUsers(stack: string): Promise<PodUser[]> {
  const prefix = podUserCommentPrefix(stack);
  const out = await run('getent', ['passwd'], 'list users');
  return out
    .split('\n')
    .map(parsePasswd)
    .filter((u): u is PodUser => u !== null && u.comment.startsWith(prefix));
}

/** The shadow tools lock /etc/passwd; two stacks coming up at once may meet there. Bounded retry. */
async function shadow(tool: 'useradd' | 'userdel' | 'groupdel', args: string[], what: string) {
  for (let i = 0; ; i++) {
    const r = await attempt(tool, args);
    if (r.code === 0) return;
    if (i >= 10 || !/lock|try again/i.test(r.stderr))
      throw new Error(
        `${what}: \`${tool} ${args.join(' ')}\` exited ${r.code}: ${r.stderr.trim()}`,
      );
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The pod's user, created when missing (a system user with its own group, no home, no shell). */
export async function ensurePodUser(stack: string, pod: string): Promise<PodUser> {
  const name = podUserName(stack, pod);
  const comment = podUserComment(stack, pod);
  const existing = await getUser(name);
  if (existing) {
    if (existing.comment !== comment)
      throw new Error(
        `pod ${stack}/${pod}: user ${name} exists and is not this pod's (GECOS "${existing.comment}"); ` +
          'remove that user or rename the stack',
      );
    return existing;
  }
  const shell = findTool('nologin') ?? '/bin/false';
  const args = ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent'];
  await shadow('useradd', [...args, '--shell', shell, '--comment', comment, name], `user ${name}`);
  const made = await getUser(name);
  if (!made) throw new Error(`user ${name}: useradd succeeded but getent does not find it`);
  return made;
}

/** Remove a pod user and its own group. Its processes must be gone (userdel refuses otherwise). */
export async function removePodUser(user: PodUser): Promise<void> {
  if (await getUser(user.name)) await shadow('userdel', [user.name], `remove user ${user.name}`);
  // userdel drops the user's private group only when USERGROUPS_ENAB is set; make sure either way.
  const g = await attempt('getent', ['group', user.name]);
  const gid = Number(g.stdout.split(':')[2]);
  if (g.code === 0 && gid === user.gid)
    await shadow('groupdel', [user.name], `remove group ${user.name}`);
}
