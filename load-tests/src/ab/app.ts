/**
 * The orders app of one arm of the A/B gate run, as its own process so that its CPU can be read from
 * /proc apart from every other arm's: what orders-api answers (POST /orders, GET /orders/{id}), kept
 * in memory (bounded), with the identity check the services make (the JWT payload header must be
 * there). `burnUs` > 0 makes every request also spin that many microseconds of CPU: the injected CPU
 * regression of the gate's test. Node built-ins only, so `node app.ts` runs it as is.
 *
 *   node load-tests/src/ab/app.ts <port> [burnUs] [payloadHeader]
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const burnUs = Number(process.argv[3] ?? '0');
const payloadHeader = (process.argv[4] ?? 'x-jwt-payload').toLowerCase();
if (!(Number.isInteger(port) && port > 0 && port < 65536))
  throw new Error(`port: '${process.argv[2]}' is not a TCP port`);
if (!(Number.isFinite(burnUs) && burnUs >= 0))
  throw new Error(`burnUs: '${process.argv[3]}' must be a number of microseconds, zero or more`);

/**
 * Spin until this process has used `us` more microseconds of CPU (pure computation, no sleep). Counted
 * in CPU time, not wall-clock time: on a busy machine a wall-clock spin is preempted part of the way
 * and burns less than asked, which made the injected regression smaller and noisier exactly when the
 * machine was loaded. `process.cpuUsage()` (getrusage RUSAGE_SELF) is exact here; the per-thread
 * counters are not: measured on this machine, a 250 µs spin on `process.threadCpuUsage()` or on
 * /proc/thread-self/schedstat burned 2.1–2.7 ms, on `process.cpuUsage()` 260 µs.
 */
function burn(us: number): number {
  const used = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const end = used() + us;
  let x = 0;
  while (used() < end) for (let i = 0; i < 200; i++) x = (x * 31 + i) % 1_000_003;
  return x;
}

const orders = new Map<string, Record<string, unknown>>();
let sink = 0;
const server = createServer((req, res) => {
  if (burnUs > 0) sink ^= burn(burnUs);
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const payload = req.headers[payloadHeader];
  if (typeof payload !== 'string' || payload === '') return send(401, { error: 'unauthenticated' });
  let sub = 'unknown';
  try {
    sub = (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string }).sub ?? sub;
  } catch {
    return send(401, { error: 'unauthenticated' });
  }
  if (req.method === 'POST' && req.url === '/orders') {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      let b: { sku?: unknown; quantity?: unknown };
      try {
        b = JSON.parse(raw) as typeof b;
      } catch {
        return send(400, { error: 'body is not JSON' });
      }
      const order = {
        id: randomUUID(),
        sku: b.sku,
        quantity: b.quantity,
        subject: sub,
        createdAt: new Date().toISOString(),
      };
      if (orders.size < 100_000) orders.set(order.id, order);
      send(202, order);
    });
    return;
  }
  const m = /^\/orders\/([0-9a-f-]{36})$/.exec(req.url ?? '');
  if (req.method === 'GET' && m?.[1]) {
    const o = orders.get(m[1]);
    return o ? send(200, o) : send(404, { error: 'not_found' });
  }
  send(404, { error: 'no route' });
});
// Longer than any run: the load keeps its connections alive.
server.keepAliveTimeout = 600_000;
server.headersTimeout = 601_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port} ${sink}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
