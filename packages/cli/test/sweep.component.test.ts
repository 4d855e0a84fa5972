// What `up` (on an empty state) and `down` (after destroy) remove when the Pulumi state is lost: a
// stack's supervisors still running under its run dir, and its pods, found by name. Needs root.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupStale, createPods, isClean, podLeftovers, stackSubnet } from '@trellis/local/pods';
import { startSupervised, supervisedStatus } from '@trellis/local/supervisor';
import { sweepStack } from '../src/pods.ts';

const STACK = 'ctsweep';
const subnet = stackSubnet(61_000); // 198.18.61.0/24, clear of the other tests' stacks
const dir = mkdtempSync(join(tmpdir(), 'trellis-sweep-'));

afterAll(async () => {
  await cleanupStale(STACK);
  rmSync(dir, { recursive: true, force: true });
});

/** Start `sleep` under a supervisor whose state is `<dir>/run/<name>/supervisor.json`. */
async function sleeper(name: string, pod?: Parameters<typeof startSupervised>[0]['pod']) {
  const d = join(dir, 'run', name);
  mkdirSync(d, { recursive: true });
  const stateFile = join(d, 'supervisor.json');
  await startSupervised({
    name,
    command: '/bin/sleep',
    args: ['600'],
    env: {},
    cwd: d,
    logFile: join(d, 'process.log'),
    stateFile,
    ...(pod !== undefined ? { pod } : {}),
  });
  return stateFile;
}

describe('sweepStack', () => {
  it('stops the supervisors of a lost state, then removes the stack’s pods', async () => {
    const made = await createPods({ stack: STACK, subnet, pods: [{ name: 'app', slot: 0 }] });
    const launch = made.pods.app?.launch;
    if (!launch) throw new Error('no pod app');
    const onHost = await sleeper('host-proc');
    const inPod = await sleeper('pod-proc', launch);
    // Left as a crash with a lost state would leave them: supervised, in a pod, with its user.
    expect(supervisedStatus(onHost)).not.toBeNull();
    expect(supervisedStatus(inPod)).not.toBeNull();
    const before = await podLeftovers(STACK);
    expect(before.netns).toEqual([`trellis.${STACK}`, `trellis.${STACK}.app`]);
    expect(before.pids.length).toBeGreaterThan(0);

    const done = await sweepStack(STACK, dir);
    expect(done).toEqual(
      expect.arrayContaining([
        `stopped the supervisor of ${onHost}`,
        `stopped the supervisor of ${inPod}`,
        `removed network namespace trellis.${STACK}.app`,
        `removed link trl-${STACK}`,
      ]),
    );
    expect(supervisedStatus(onHost)).toBeNull();
    expect(supervisedStatus(inPod)).toBeNull();
    expect(isClean(await podLeftovers(STACK))).toBe(true);
    // A second sweep finds nothing (and needs nothing).
    expect(await sweepStack(STACK, dir)).toEqual([]);
  }, 120_000);
});
