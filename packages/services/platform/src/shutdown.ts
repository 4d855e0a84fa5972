import type { FastifyInstance } from 'fastify';

/**
 * Graceful shutdown on SIGTERM (the supervisor's and Kubernetes' stop signal) and SIGINT: stop
 * accepting, let in-flight requests finish, then the app's onClose hooks disconnect Kafka and
 * Cassandra. Exits 0 when drained, 1 when `graceMs` runs out first.
 */
export function closeOnSignals(app: FastifyInstance, graceMs: number): void {
  let closing = false;
  // pino writes asynchronously, and its exit handler writes what is still buffered synchronously, even
  // while an earlier asynchronous write is in flight (sonic-boom's flushSync), which can put the newer
  // lines first. The services component test saw "request completed" after "drained; exiting" twice (CI
  // stop 21; a fresh-clone run on 2026-12-07 after the test read the pipes to their end); this is the
  // likely cause (not reproduced). Flush, then exit; the timer bounds the wait and, kept referenced,
  // makes sure the exit code is this one.
  const exit = (code: number): void => {
    const log = app.log as { flush?: (cb: (err?: Error) => void) => void };
    if (typeof log.flush !== 'function') process.exit(code);
    setTimeout(() => process.exit(code), 2_000);
    log.flush(() => process.exit(code));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    const started = Date.now();
    app.log.info({ signal, graceMs }, 'shutting down: draining in-flight work');
    const force = setTimeout(() => {
      app.log.error({ graceMs }, 'shutdown grace period over; exiting with work still in flight');
      exit(1);
    }, graceMs);
    force.unref();
    app.close().then(
      () => {
        app.log.info({ ms: Date.now() - started }, 'drained; exiting');
        exit(0);
      },
      (err: unknown) => {
        app.log.error({ err: err as Error }, 'error while shutting down');
        exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
