/**
 * What `up` and `down` do about a stack's pods (docs/adr/0012) beyond what Pulumi does: the
 * preflight before anything starts, and the sweep of what a lost Pulumi state left behind (its
 * supervisors would restart what the pods' teardown kills, so they go first).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { cleanupStale, podPreflight } from '@trellis/local/pods';
import { stopSupervised, supervisedStatus } from '@trellis/local/supervisor';
import { PROJECT_DIR } from './stack.ts';

/**
 * Whether `stack` runs its workloads as pods: its committed `trellis-local:pods`, on unless it is
 * `false` (the default of infra/local/config.ts, where the program reads it).
 */
export function stackHasPods(stack: string, projectDir = PROJECT_DIR): boolean {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) return true;
  const doc = (parse(readFileSync(file, 'utf8')) ?? {}) as { config?: Record<string, unknown> };
  return String(doc.config?.['trellis-local:pods'] ?? 'true') !== 'false';
}

/**
 * The preflight of a stack with pods: null when this process can create them, else the message
 * that says what is missing (root, a tool and its package) and the way out.
 */
export function podsPreflightMessage(
  stack: string,
  check: () => void = podPreflight,
): string | null {
  try {
    check();
    return null;
  } catch (err) {
    return (
      `stack '${stack}' runs every workload as a pod (trellis-local:pods), and ${(err as Error).message}. ` +
      `Without root, set trellis-local:pods to 'false' in infra/local/Pulumi.${stack}.yaml ` +
      '(every workload then runs on the host, without the isolation).'
    );
  }
}

/** The supervisor state files under `runDir` (`<component>/supervisor.json`, two levels deep). */
export function supervisorStates(runDir: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // no such directory: nothing ran
    }
    for (const e of entries) {
      if (e.isFile() && e.name === 'supervisor.json') found.push(join(dir, e.name));
      else if (e.isDirectory() && depth > 0) walk(join(dir, e.name), depth - 1);
    }
  };
  walk(runDir, 2);
  return found.sort();
}

/** Resources of a `pulumi stack export` document, without the stack and provider resources. */
export function liveResources(exported: string): number {
  const doc = JSON.parse(exported || '{}') as { deployment?: { resources?: { type?: string }[] } };
  return (doc.deployment?.resources ?? []).filter(
    (r) => r.type !== 'pulumi:pulumi:Stack' && !(r.type ?? '').startsWith('pulumi:providers:'),
  ).length;
}

/**
 * Remove what a run of `stack` left that no Pulumi state knows of any more (a lost or deleted
 * state, or a destroy that had nothing to destroy): its supervisors under `<stackDir>/run`, then
 * its pods' namespaces, link, users and processes. Call it only when the state holds nothing of
 * the stack, or it stops live processes. Returns one line per thing removed. Pods need root to
 * remove (none when nothing is left).
 */
export async function sweepStack(stack: string, stackDir: string): Promise<string[]> {
  const done: string[] = [];
  for (const f of supervisorStates(join(stackDir, 'run'))) {
    // Only a live supervisor: a dead one's pids may belong to someone else by now. What its child
    // left in a pod goes with the pod below (by namespace and user).
    if (supervisedStatus(f) === null) continue;
    await stopSupervised(f);
    done.push(`stopped the supervisor of ${f}`);
  }
  const pods = await cleanupStale(stack);
  for (const n of pods.netns) done.push(`removed network namespace ${n}`);
  for (const l of pods.links) done.push(`removed link ${l}`);
  for (const u of pods.users) done.push(`removed pod user ${u}`);
  if (pods.pids.length > 0) done.push(`killed pod processes ${pods.pids.join(', ')}`);
  return done;
}
