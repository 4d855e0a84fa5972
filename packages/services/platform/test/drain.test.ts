import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHttpApp } from '../src/http.ts';

/** A log stream that keeps each line's `msg`, in order. */
function lines(): { stream: Writable; msgs: string[] } {
  const msgs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        msgs.push((JSON.parse(l) as { msg: string }).msg);
      cb();
    },
  });
  return { stream, msgs };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('error', rej);
    req.end();
  });
}

describe('closing the app drains in-flight requests (real listener on loopback)', () => {
  it('waits for a running handler, answers it, and logs it before close resolves', async () => {
    const { stream, msgs } = lines();
    const app = createHttpApp({ service: 't', log: { stream }, readiness: () => ({}) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    app.get('/slow', async () => {
      entered();
      await gate;
      app.log.info('handler finished');
      return { ok: true };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;

    const slow = get(port, '/slow');
    await inside;
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    // Still draining: the handler has not returned, so close has not resolved...
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    expect(msgs).toContain('closing: waiting for in-flight requests');
    // ... and a request arriving meanwhile is refused cleanly, without reaching a handler.
    expect(await get(port, '/slow')).toBe(503);
    release();
    expect(await slow).toBe(200);
    await closing;
    const finished = msgs.indexOf('handler finished');
    expect(finished).toBeGreaterThan(-1);
    expect(msgs.indexOf('request completed', finished)).toBeGreaterThan(finished);
    expect(msgs).not.toContain('closing with requests still in flight');
  });

  it('gives up after drainMs on a stuck handler, and says so', async () => {
    const { stream, msgs } = lines();
    const app = createHttpApp({
      service: 't',
      log: { stream },
      readiness: () => ({}),
      drainMs: 100,
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    app.get('/stuck', async () => {
      entered();
      await new Promise(() => {});
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const stuck = get(port, '/stuck').catch((e: NodeJS.ErrnoException) => e.code);
    await inside;
    // close() still waits for the socket; destroy it once the drain gave up so close can finish.
    const closing = app.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(msgs).toContain('closing with requests still in flight');
    app.server.closeAllConnections();
    await closing;
    expect(await stuck).toBe('ECONNRESET');
  });

  it('closes at once when nothing is in flight', async () => {
    const { stream, msgs } = lines();
    const app = createHttpApp({ service: 't', log: { stream }, readiness: () => ({}) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    expect(await get(port, '/healthz')).toBe(200);
    await app.close();
    expect(msgs).not.toContain('closing: waiting for in-flight requests');
  });
});
