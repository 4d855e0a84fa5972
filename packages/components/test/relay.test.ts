/**
 * The local stack's TCP relay (`RELAY_SCRIPT`, run as its own process as `up` runs it) in front of a TLS
 * server on loopback that closes chosen connections before the handshake, as Keycloak does while it
 * reloads its certificate (ADR 0031).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '@trellis/local/harness';
import { RELAY_SCRIPT } from '../src/local/relay.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-relay-test-'));
const script = join(dir, 'relay.mjs');
let rootPem = '';
let server: Server;
let port = 0;
/** Connections the server accepted, and how many of the next ones it closes before TLS. */
const seen = { accepted: 0, closeNext: 0, answerThenClose: false };
const relays: ChildProcess[] = [];
/** What the current relay printed. */
let printed = '';

beforeAll(async () => {
  writeFileSync(script, RELAY_SCRIPT);
  const ca = await (
    await CertificateAuthority.create({ commonName: 'relay test root' })
  ).intermediate({ commonName: 'relay test intermediate' });
  const leaf = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1', '127.0.0.2'] });
  rootPem = ca.rootPem;
  server = createServer({ cert: leaf.chainPem, key: leaf.keyPem }, (s) => {
    s.on('data', (b: Buffer) => {
      s.write(`echo ${b.toString()}`);
      if (seen.answerThenClose) s.destroy();
    });
    s.on('error', () => undefined);
  });
  server.on('connection', (socket: Socket) => {
    seen.accepted++;
    if (seen.closeNext > 0) {
      seen.closeNext--;
      socket.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterEach(() => {
  for (const r of relays.splice(0)) r.kill('SIGTERM');
  Object.assign(seen, { accepted: 0, closeNext: 0, answerThenClose: false });
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

/** Start the relay on 127.0.0.2:<port> to the server's 127.0.0.1:<port>; resolves once it listens. */
async function relay(...flags: string[]): Promise<void> {
  printed = '';
  const child = spawn(
    process.execPath,
    [script, '127.0.0.2', '127.0.0.1', ...flags, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  relays.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      printed += b.toString();
      if (printed.startsWith('relay ')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the relay exited (${code})`)));
  });
}

/** One TLS exchange through the relay: what the server echoed, or the error. */
function exchange(): Promise<{ reply?: string; error?: string }> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.2', port, ca: rootPem, servername: 'localhost' }, () =>
      s.write('hello'),
    );
    s.on('data', (b: Buffer) => {
      res({ reply: b.toString() });
      s.end();
    });
    s.on('error', (e) => res({ error: e.message }));
    s.on('close', () => res({ error: 'closed' }));
  });
}

describe('the relay', () => {
  it('passes a TLS exchange through, end to end', async () => {
    await relay();
    expect(await exchange()).toEqual({ reply: 'echo hello' });
    expect(seen.accepted).toBe(1);
  });

  it('passes on a close before TLS by default (what the client then sees)', async () => {
    await relay();
    seen.closeNext = 1;
    expect((await exchange()).error).toMatch(/before secure TLS connection was established/);
    expect(seen.accepted).toBe(1);
  });

  it('with --replay-unanswered, dials again when the server closed without a byte, and the client never knows', async () => {
    await relay('--replay-unanswered');
    seen.closeNext = 2;
    expect(await exchange()).toEqual({ reply: 'echo hello' });
    expect(seen.accepted).toBe(3); // two closed before TLS, the third served
    expect(printed.match(/^replay \d+: the server closed before answering/gm)?.length).toBe(2);
  });

  it('with --replay-unanswered, gives up after 4 tries', async () => {
    await relay('--replay-unanswered');
    seen.closeNext = 100;
    expect((await exchange()).error).toMatch(/before secure TLS connection was established/);
    expect(seen.accepted).toBe(4);
  });

  it('with --replay-unanswered, passes on a refused connection (a server that is down) as a close', async () => {
    await new Promise<void>((r) => server.close(() => r()));
    try {
      await relay('--replay-unanswered');
      expect((await exchange()).error).toMatch(/before secure TLS connection was established/);
      expect(seen.accepted).toBe(0);
    } finally {
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    }
  });

  it('with --replay-unanswered, passes on a close once the server has answered, without dialling again', async () => {
    await relay('--replay-unanswered');
    seen.answerThenClose = true;
    expect(await exchange()).toEqual({ reply: 'echo hello' });
    // The server closed after its answer: one connection, not replayed.
    await new Promise((r) => setTimeout(r, 800));
    expect(seen.accepted).toBe(1);
  });
});
