import { Counter, type Registry } from 'prom-client';
import type { WriterStats } from './writer.ts';

/** Each {@link WriterStats} field, its Prometheus counter and what it counts. */
const counters: readonly { stat: keyof WriterStats; name: string; help: string }[] = [
  {
    stat: 'chunks',
    name: 'orders_writer_chunks_total',
    help: 'Chunks written (stored and emitted).',
  },
  {
    stat: 'written',
    name: 'orders_writer_orders_written_total',
    help: 'Order rows written to Cassandra.',
  },
  {
    stat: 'emitted',
    name: 'orders_writer_events_emitted_total',
    help: 'order.created events acknowledged by Kafka (orders.v1).',
  },
  {
    stat: 'replays',
    name: 'orders_writer_replays_total',
    help: 'Intake records whose order was already stored with the same fingerprint (event emitted again).',
  },
  {
    stat: 'duplicates',
    name: 'orders_writer_duplicates_total',
    help: "Later intake records of an order id in the same chunk with the first one's fingerprint.",
  },
  {
    stat: 'conflicts',
    name: 'orders_writer_conflicts_total',
    help: 'Intake records whose order id is held by another fingerprint (stored, or earlier in the chunk): not written.',
  },
  {
    stat: 'malformed',
    name: 'orders_writer_malformed_records_total',
    help: 'Intake records that did not decode, skipped.',
  },
];

/**
 * Registers the writer's counters on `registry`. Each reads its field of `stats` at scrape time, so
 * the figures are exactly the ones the writer keeps (since the process started, replays included).
 */
export function registerWriterMetrics(registry: Registry, stats: Readonly<WriterStats>): void {
  for (const { stat, name, help } of counters) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(stats[stat]);
      },
    });
  }
}
