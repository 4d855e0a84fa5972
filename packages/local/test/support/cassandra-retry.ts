/**
 * How the Cassandra fault tests send a request: retried like a service would (the services' writer
 * handles its records again), each failure kept with the driver's view of each host, and the
 * driver's own log kept to print when a request had to be retried (ADR 0028).
 */
import type { Client } from 'cassandra-driver';
import { waitUntil } from '../../src/harness/wait.ts';

/** The requests' record, and the two functions that fill it. */
export interface Retrier {
  /** One line per failed try that a later try made good. */
  retried: string[];
  /** One line per request that failed every try. */
  failed: string[];
  /** The recorded clients' log lines (hosts, pools, connections, the control connection). */
  driverLog: string[];
  /** Record `client`'s log events under `name`, from now on. */
  recordLog(client: Client, name: string): void;
  /**
   * Run `request` on `client` until it answers: up to 8 tries, 0.25, 0.5, 1, then 2 s apart (about
   * 10 s in all). Resolves `undefined` after the eighth failure, which goes to `failed`.
   */
  withRetry<T>(client: Client, what: string, request: () => Promise<T>): Promise<T | undefined>;
}

/** `since()` stamps each line: time from the fault, or a word before it. */
export function cassandraRetrier(since: () => string): Retrier {
  const retried: string[] = [];
  const failed: string[] = [];
  const driverLog: string[] = [];
  return {
    retried,
    failed,
    driverLog,
    recordLog(client, name) {
      client.on('log', (level: string, className: string, message: string) => {
        if (level === 'verbose' && !/host|pool|connection|control/i.test(message)) return;
        if (driverLog.length < 800)
          driverLog.push(`${since()} ${name} ${level} ${className}: ${message}`);
      });
    },
    async withRetry(client, what, request) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await request();
        } catch (err) {
          const inner = (err as { innerErrors?: Record<string, Error> }).innerErrors ?? {};
          const why = Object.entries(inner).map(([h, e]) => `${h}: ${e.message}`);
          // What the driver thought of each host: "All host(s) tried" with no per-host cause means
          // it had none it would try.
          const state = client.getState();
          const hosts = client.hosts
            .values()
            .map(
              (h) =>
                `${h.address} ${h.isUp() ? 'up' : 'down'}, ${state.getOpenConnections(h)} open, ` +
                `${state.getInFlightQueries(h)} in flight`,
            );
          const line =
            `${what} (attempt ${attempt}, ${since()}): ${(err as Error).message} ${why.join('; ')} ` +
            `[driver: ${hosts.join('; ')}]`;
          if (attempt === 8) {
            failed.push(line);
            return undefined;
          }
          retried.push(line);
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** (attempt - 1), 2_000)));
        }
      }
    },
  };
}

/** Poll `probe` once a second until it holds (a failed probe counts as not yet), for up to `timeoutMs`. */
export function waitFor(
  probe: () => Promise<boolean>,
  what: string,
  timeoutMs = 120_000,
): Promise<boolean> {
  return waitUntil(probe, { what, timeoutMs, intervalMs: 1_000 });
}
