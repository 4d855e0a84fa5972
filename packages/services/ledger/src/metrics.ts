import { Counter, type Registry } from 'prom-client';
import type { OrderConsumer } from './consumer.ts';

/**
 * The consumer's counters, read at scrape time (since the process started, replays included). The
 * projection is a plain upsert, so a replayed event counts as projected again: there is no separate
 * duplicate count.
 */
export function registerConsumerMetrics(
  registry: Registry,
  consumer: Readonly<Pick<OrderConsumer, 'projected' | 'skipped'>>,
): void {
  new Counter({
    name: 'ledger_events_projected_total',
    help: 'orders.v1 events projected into ledger.order_entries (replays included).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(consumer.projected);
    },
  });
  new Counter({
    name: 'ledger_malformed_events_total',
    help: 'orders.v1 records that did not decode, skipped.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(consumer.skipped);
    },
  });
}
