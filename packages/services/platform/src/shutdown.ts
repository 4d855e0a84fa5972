import type { FastifyInstance } from 'fastify';

/**
 * Graceful shutdown on SIGTERM (the supervisor's and Kubernetes' stop signal) and SIGINT: stop
 * accepting, let in-flight requests finish, then the app's onClose hooks disconnect Kafka and
 * Cassandra. Exits 0 when drained, 1 when `graceMs` runs out first.
 */
export function closeOnSignals(app: FastifyInstance, graceMs: number): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    const started = Date.now();
    app.log.info({ signal, graceMs }, 'shutting down: draining in-flight work');
    const force = setTimeout(() => {
      app.log.error({ graceMs }, 'shutdown grace period over; exiting with work still in flight');
      process.exit(1);
    }, graceMs);
    force.unref();
    app.close().then(
      () => {
        app.log.info({ ms: Date.now() - started }, 'drained; exiting');
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err: err as Error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
