import type { Consumer } from 'kafkajs';

/**
 * Read `topic` from the beginning up to offset `end` (its high watermark, taken before) with `consumer`
 * (made, not connected, by the caller) and count each key: what the fault tests check acknowledged
 * records against. Fails after `timeoutMs` naming how far it got; always disconnects.
 */
export async function countKeys(
  consumer: Consumer,
  topic: string,
  end: number,
  timeoutMs = 60_000,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`read ${seen.size} keys, offset ${end} not reached in ${timeoutMs} ms`)),
        timeoutMs,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          const k = message.key?.toString() ?? '';
          seen.set(k, (seen.get(k) ?? 0) + 1);
          if (Number(message.offset) + 1 >= end) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return seen;
}

/** The acknowledged keys not read back, and the keys read more than once. */
export function lostAndDuplicated(
  acked: readonly string[],
  seen: ReadonlyMap<string, number>,
): { lost: string[]; duplicated: string[] } {
  return {
    lost: acked.filter((k) => !seen.has(k)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([k]) => k),
  };
}
