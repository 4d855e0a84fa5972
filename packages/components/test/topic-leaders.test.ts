import { describe, expect, it } from 'vitest';
import { waitForLeaders } from '../src/local/kafka-impl.ts';

type Md = { topics: { name: string; partitions: { leader: number }[] }[] };

/** An admin whose metadata answers are scripted, one per call; the last one repeats. */
function scripted(answers: (Md | Error)[]): {
  admin: { fetchTopicMetadata: (q: { topics: string[] }) => Promise<Md> };
  asked: string[][];
} {
  const asked: string[][] = [];
  let n = 0;
  return {
    asked,
    admin: {
      fetchTopicMetadata: (q) => {
        asked.push([...q.topics]);
        const a = answers[Math.min(n++, answers.length - 1)];
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as Md);
      },
    },
  };
}

const led = (name: string, leaders: number[]): Md['topics'][number] => ({
  name,
  partitions: leaders.map((leader) => ({ leader })),
});

describe('waitForLeaders (the topics resource, after createTopics)', () => {
  it('rides out "does not host this topic-partition" and leaderless partitions, then returns', async () => {
    const { admin, asked } = scripted([
      new Error('This server does not host this topic-partition'),
      { topics: [led('a', [0, -1]), led('b', [0])] },
      { topics: [led('a', [0, 0])] },
    ]);
    await waitForLeaders(
      admin as never,
      [
        { name: 'a', partitions: 2 },
        { name: 'b', partitions: 1 },
      ],
      5_000,
      1,
    );
    // b had its leader at the second answer; only a was asked for after that.
    expect(asked).toEqual([['a', 'b'], ['a', 'b'], ['a']]);
  });

  it('fails past its deadline, naming the topic without a leader and the last error', async () => {
    const { admin } = scripted([new Error('This server does not host this topic-partition')]);
    await expect(
      waitForLeaders(admin as never, [{ name: 'orders.v1', partitions: 1 }], 50, 5),
    ).rejects.toThrow(
      /topics orders\.v1: no leader for every partition within 50 ms \(last: This server does not host/,
    );
  });
});
