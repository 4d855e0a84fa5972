import { describe, expect, it } from 'vitest';
import { runInPod } from '../src/pods/index.ts';

describe('runInPod', () => {
  it('rejects a pod whose namespace does not exist, naming the field', async () => {
    await expect(
      runInPod({ netns: 'trellis.nostack.nopod', uid: 4242, gid: 4242 }, '/bin/true', []),
    ).rejects.toThrow('pod.netns: namespace trellis.nostack.nopod does not exist');
  });

  it('rejects a namespace that is not a Trellis pod', async () => {
    await expect(runInPod({ netns: 'not a pod', uid: 0, gid: 0 }, '/bin/true', [])).rejects.toThrow(
      'pod.netns: "not a pod" is not a Trellis pod namespace name',
    );
  });
});
