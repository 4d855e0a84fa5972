import type { Order } from '@trellis/contracts/orders-v1';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The read cache of `GET /orders/:id`: the orders last read, bounded by count (least recently used
 * out first). An order is immutable once written (no route changes or deletes one), so an entry
 * never goes stale and needs no invalidation; only found orders are cached, since a 404 may turn
 * into an order a moment later. Lookups are counted as hits and misses, exported as Prometheus
 * counters plus the lifetime hit ratio.
 */
export class OrderCache {
  private readonly lru: LRUCache<string, Order> | null;
  private readonly lookups: Counter<'result'>;
  private hits = 0;
  private misses = 0;

  /** @param maxEntries 0 turns the cache off (every lookup is a miss). */
  constructor(maxEntries: number, registry: Registry) {
    this.lru = maxEntries > 0 ? new LRUCache<string, Order>({ max: maxEntries }) : null;
    this.lookups = new Counter({
      name: 'orders_api_order_cache_lookups_total',
      help: 'GET /orders/:id cache lookups, by result (hit or miss).',
      labelNames: ['result'],
      registers: [registry],
    });
    // Both series exist from the start, so rate(hit) / rate(hit + miss) is defined at once.
    this.lookups.inc({ result: 'hit' }, 0);
    this.lookups.inc({ result: 'miss' }, 0);
    const lru = this.lru;
    new Gauge({
      name: 'orders_api_order_cache_entries',
      help: 'Orders held in the read cache.',
      registers: [registry],
      collect() {
        this.set(lru?.size ?? 0);
      },
    });
    const ratio = (): number => {
      const total = this.hits + this.misses;
      return total === 0 ? 0 : this.hits / total;
    };
    new Gauge({
      name: 'orders_api_order_cache_hit_ratio',
      help: 'Hits / lookups of the read cache since the process started (rate the counters for a window).',
      registers: [registry],
      collect() {
        this.set(ratio());
      },
    });
  }

  /** The cached order, counting a hit or a miss. */
  get(id: string): Order | undefined {
    const o = this.lru?.get(id);
    if (o === undefined) {
      this.misses++;
      this.lookups.inc({ result: 'miss' });
    } else {
      this.hits++;
      this.lookups.inc({ result: 'hit' });
    }
    return o;
  }

  /** Remember an order that was read from the store. */
  set(order: Order): void {
    this.lru?.set(order.id, order);
  }

  /** Hits and misses since start; for logs and tests. */
  stats(): { hits: number; misses: number; entries: number } {
    return { hits: this.hits, misses: this.misses, entries: this.lru?.size ?? 0 };
  }
}
