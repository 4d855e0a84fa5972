import type { Order } from '@trellis/contracts/orders-v1';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OrderCache } from '../src/cache.ts';

const order = (n: number): Order => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  sku: `S-${n}`,
  quantity: 1,
  subject: 'alice',
  createdAt: '2026-12-06T00:00:00.000Z',
});

/** One sample's value from the registry's text exposition. */
async function sample(registry: Registry, series: string): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('OrderCache', () => {
  it('counts misses and hits, and exports them with the hit ratio', async () => {
    const registry = new Registry();
    const cache = new OrderCache(10, registry);
    expect(await sample(registry, 'orders_api_order_cache_lookups_total{result="hit"}')).toBe(0);
    expect(cache.get(order(1).id)).toBeUndefined();
    cache.set(order(1));
    for (let i = 0; i < 3; i++) expect(cache.get(order(1).id)).toEqual(order(1));
    expect(cache.stats()).toEqual({ hits: 3, misses: 1, entries: 1 });
    expect(await sample(registry, 'orders_api_order_cache_lookups_total{result="hit"}')).toBe(3);
    expect(await sample(registry, 'orders_api_order_cache_lookups_total{result="miss"}')).toBe(1);
    expect(await sample(registry, 'orders_api_order_cache_hit_ratio')).toBe(0.75);
    expect(await sample(registry, 'orders_api_order_cache_entries')).toBe(1);
  });

  it('holds at most maxEntries, dropping the least recently used', () => {
    const cache = new OrderCache(2, new Registry());
    cache.set(order(1));
    cache.set(order(2));
    cache.get(order(1).id); // 1 is now the most recently used
    cache.set(order(3));
    expect(cache.get(order(2).id)).toBeUndefined();
    expect(cache.get(order(1).id)).toEqual(order(1));
    expect(cache.get(order(3).id)).toEqual(order(3));
    expect(cache.stats().entries).toBe(2);
  });

  it('returns the order stored under the id asked for, never another', () => {
    const cache = new OrderCache(100, new Registry());
    for (let n = 0; n < 50; n++) cache.set(order(n));
    for (let n = 0; n < 50; n++) expect(cache.get(order(n).id)?.sku).toBe(`S-${n}`);
  });

  it('with 0 entries caches nothing and counts every lookup as a miss', () => {
    const cache = new OrderCache(0, new Registry());
    cache.set(order(1));
    expect(cache.get(order(1).id)).toBeUndefined();
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, entries: 0 });
  });
});
