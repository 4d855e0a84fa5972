import type { FastifyBaseLogger } from 'fastify';

/** A backing service (Cassandra, Kafka) that the app connects to in the background. */
export interface Dependency {
  readonly name: string;
  /** One connection attempt; throws when it fails. Called again after a failure. */
  connect(): Promise<void>;
  /** Connected and usable right now (readiness). */
  ready(): boolean;
  /** Release everything; called once at shutdown, also when never connected. */
  close(): Promise<void>;
}

/** Thrown by a {@link Dependency.connect} that waits for another one first; logged quietly. */
export class NotYetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotYetError';
  }
}

/**
 * The waits between tries of something that keeps failing: 0.25 s, doubling, capped at 5 s, for ever.
 * The loops that use it end themselves (on close).
 */
export function* cappedBackoff(firstMs = 250, capMs = 5_000): Generator<number, never> {
  for (let ms = firstMs; ; ms = Math.min(ms * 2, capMs)) yield ms;
}

/** Disconnect a kafkajs client that was replaced, in the background; a failure is only logged. */
export function disconnectAbandoned(
  client: { disconnect(): Promise<void> },
  what: 'producer' | 'consumer',
  log: FastifyBaseLogger,
): void {
  client.disconnect().catch((err: unknown) => {
    log.warn({ err: err as Error }, `disconnecting an abandoned ${what} failed`);
  });
}

/**
 * Connects dependencies in the background, retrying with capped backoff, so the HTTP server (and its
 * health endpoints) come up at once and readiness tells the truth while a data store is still down.
 */
export class Connector {
  private readonly deps: readonly Dependency[];
  private readonly log: FastifyBaseLogger;
  private stopped = false;
  /** Pending backoff sleeps: clear the timer and resolve, so close() can end the loops at once. */
  private readonly sleeps = new Set<() => void>();
  private readonly loops: Promise<void>[] = [];

  constructor(deps: readonly Dependency[], log: FastifyBaseLogger) {
    this.deps = deps;
    this.log = log;
  }

  /** Start connecting every dependency; does not wait. */
  start(): void {
    for (const d of this.deps) this.loops.push(this.loop(d));
  }

  /** Readiness of each dependency by name. */
  status(): Record<string, boolean> {
    return Object.fromEntries(this.deps.map((d) => [d.name, !this.stopped && d.ready()]));
  }

  /** Stop retrying, then close every dependency, last first. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const wake of this.sleeps) wake();
    // A connect attempt in progress may take up to its own timeout; do not let it hold up shutdown.
    await Promise.race([Promise.allSettled(this.loops), delay(2_000)]);
    // In reverse order: a consumer stops (finishing its in-flight message) before the store it
    // writes to is shut down.
    for (const d of [...this.deps].reverse()) {
      try {
        await d.close();
      } catch (err) {
        this.log.warn({ err: err as Error, dependency: d.name }, 'close failed');
      }
    }
  }

  private async loop(d: Dependency): Promise<void> {
    const waits = cappedBackoff();
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await d.connect();
        this.log.info({ dependency: d.name, attempt }, 'connected');
        return;
      } catch (err) {
        if (this.stopped) return;
        const loud = !(err instanceof NotYetError) && (attempt === 1 || attempt % 10 === 0);
        const level = loud ? 'warn' : 'debug';
        this.log[level](
          { dependency: d.name, attempt, err: err as Error },
          'connect failed; retrying',
        );
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(t);
          this.sleeps.delete(wake);
          resolve();
        };
        const t = setTimeout(wake, waits.next().value);
        this.sleeps.add(wake);
      });
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
