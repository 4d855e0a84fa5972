/**
 * Cassandra CPU per order and client latency of three ways to write a chunk of new orders, interleaved
 * in one run against one real Cassandra node from `@trellis/local/harness` (RF 1, LOCAL_QUORUM):
 *   lwt        today's path: one `INSERT ... IF NOT EXISTS` (LOCAL_SERIAL) per order, 32 in flight;
 *   concurrent the writer's chunk: existence reads, then plain single-partition INSERTs, 32 in flight;
 *   batch      the writer's chunk: existence reads, then one UNLOGGED BATCH of the chunk's INSERTs.
 * Cassandra CPU is utime + stime of the node's JVM from /proc/<pid>/stat (clock ticks), sampled around
 * each section, so background work (compaction, GC) lands in whichever section it falls. Bounded:
 * ROUNDS rounds of CHUNK orders per mode. Run under the component lock:
 *   flock /work/notes/component.lock node packages/services/orders-writer/bench/write-cost.ts
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// A bench, like a test, starts a real node with the harness (a devDependency); eslint.config.js
// allows that for test/** only.
// eslint-disable-next-line no-restricted-imports
import { startCassandra, type CassandraServer } from '@trellis/local/harness';
import type { Order } from '@trellis/contracts/orders-v1';
import cassandra from 'cassandra-driver';
import { migrate } from '@trellis/service-platform/cassandra';
import { CONCURRENCY, forEachBounded, OrderRows, type StoredOrder } from '../src/rows.ts';
import { ddl, KEYSPACE } from '../src/schema.ts';

const CHUNK = Number(process.env.BENCH_CHUNK ?? 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const MODES = ['lwt', 'concurrent', 'batch'] as const;
type Mode = (typeof MODES)[number];

const LWT = `INSERT INTO ${KEYSPACE}.orders (id, sku, quantity, customer_ref, subject, created_at, request_hash)
  VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`;
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may contain spaces), 1-based: utime is 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
}

function chunk(): StoredOrder[] {
  return Array.from({ length: CHUNK }, () => {
    const order: Order = {
      id: randomUUID(),
      sku: 'SKU-42',
      quantity: 3,
      customerRef: 'bench',
      subject: 'alice',
      createdAt: new Date().toISOString(),
    };
    return { order, requestHash: 'a'.repeat(64) };
  });
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-write-cost-'));
  let server: CassandraServer | undefined;
  let client: cassandra.Client | undefined;
  try {
    const uptimeStart = execFileSync('uptime', { encoding: 'utf8' }).trim();
    server = await startCassandra({ dir: join(dir, 'cassandra') });
    client = new cassandra.Client({
      contactPoints: [server.contactPoint],
      localDataCenter: server.localDataCenter,
      queryOptions: { consistency: cassandra.types.consistencies.localQuorum, prepare: true },
    });
    await client.connect();
    await client.execute(
      `CREATE KEYSPACE ${KEYSPACE} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    );
    await migrate(client, ddl);
    const rows = new OrderRows(client);
    const c = client;
    const pid = server.process.pid;

    const run: Record<Mode, (orders: StoredOrder[], lat: number[]) => Promise<void>> = {
      lwt: (orders, lat) =>
        forEachBounded(orders, CONCURRENCY, async (r) => {
          const t = performance.now();
          const o = r.order;
          await c.execute(
            LWT,
            [
              o.id,
              o.sku,
              o.quantity,
              o.customerRef,
              o.subject,
              new Date(o.createdAt),
              r.requestHash,
            ],
            { serialConsistency: cassandra.types.consistencies.localSerial },
          );
          lat.push(performance.now() - t);
        }),
      concurrent: async (orders, lat) => {
        const t = performance.now();
        await rows.existing(orders.map((r) => r.order.id));
        await rows.insert(orders, 'concurrent');
        lat.push(performance.now() - t);
      },
      batch: async (orders, lat) => {
        const t = performance.now();
        await rows.existing(orders.map((r) => r.order.id));
        await rows.insert(orders, 'batch');
        lat.push(performance.now() - t);
      },
    };
    const stats = Object.fromEntries(
      MODES.map((m) => [m, { cpuMs: 0, wallMs: 0, orders: 0, lat: [] as number[] }]),
    ) as Record<Mode, { cpuMs: number; wallMs: number; orders: number; lat: number[] }>;

    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      // Rotate which mode goes first, so none always follows the same neighbour.
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length] as Mode);
      for (const mode of order) {
        const orders = chunk();
        const lat: number[] = [];
        const cpu0 = cpuMs(pid);
        const t0 = performance.now();
        await run[mode](orders, lat);
        const wall = performance.now() - t0;
        const cpu = cpuMs(pid) - cpu0;
        if (round < WARMUP) continue;
        const s = stats[mode];
        s.cpuMs += cpu;
        s.wallMs += wall;
        s.orders += orders.length;
        s.lat.push(...lat);
      }
    }
    const written = (await c.execute(`SELECT COUNT(*) AS n FROM ${KEYSPACE}.orders`)).first();
    const uptimeEnd = execFileSync('uptime', { encoding: 'utf8' }).trim();
    const result = {
      date: new Date().toISOString(),
      cassandra: server.version,
      chunk: CHUNK,
      warmupRounds: WARMUP,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      rowsInTable: Number(written?.get('n')),
      uptimeStart,
      uptimeEnd,
      modes: Object.fromEntries(
        MODES.map((m) => {
          const s = stats[m];
          return [
            m,
            {
              orders: s.orders,
              cassandraCpuMsPerOrder: +(s.cpuMs / s.orders).toFixed(3),
              wallMsPerOrder: +(s.wallMs / s.orders).toFixed(3),
              // lwt: per order; concurrent/batch: per chunk (the latency every order of it sees).
              latencyUnit: m === 'lwt' ? 'order' : 'chunk',
              latencyP50Ms: +quantile(s.lat, 0.5).toFixed(2),
              latencyP99Ms: +quantile(s.lat, 0.99).toFixed(2),
            },
          ];
        }),
      ),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await client?.shutdown().catch(() => undefined);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
