/**
 * Test helpers shared by the Publisher and GroupConsumer tests: a logger whose lines are kept, and a
 * stand-in kafkajs client that hands out prepared producers or consumers in order.
 */
import Fastify from 'fastify';
import type kafkajs from 'kafkajs';

/** One pino line, as the service logs it. */
export interface LogLine {
  msg: string;
  level: number;
  time: number;
  [field: string]: unknown;
}

/** A Fastify logger whose lines are kept, to read what the code under test said. */
export function keptLog(): { log: ReturnType<typeof Fastify>['log']; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const app = Fastify({
    logger: {
      level: 'info',
      stream: { write: (l: string) => lines.push(JSON.parse(l) as LogLine) },
    },
  });
  return { log: app.log, lines };
}

/** The warnings and errors among `lines` (at most 40), each with its time relative to `t0`. */
export function printWarnings(lines: readonly LogLine[], t0: number): void {
  for (const l of lines.filter((x) => x.level >= 40).slice(0, 40)) {
    const { msg, time, level: _l, pid: _p, hostname: _h, ...rest } = l;
    console.info(`  ${time - t0} ms: ${msg} ${JSON.stringify(rest).slice(0, 300)}`);
  }
}

/**
 * A kafkajs client whose `producer()` (or `consumer()`) hands out `clients` in order, and throws once
 * they are used up: a test that expects no replacement fails if one is made.
 */
export function handingOut(
  kind: 'producer' | 'consumer',
  ...clients: { [k in typeof kind]?: unknown }[]
): kafkajs.Kafka {
  let next = 0;
  return {
    [kind]: () => {
      const c = clients[next++];
      if (!c) throw new Error(`no more stand-in ${kind}s`);
      return c[kind];
    },
  } as unknown as kafkajs.Kafka;
}
