/**
 * Runs the bypass table's probes where they belong: on the host, or inside a pod as its user through
 * the project's pod launcher (`runInPod`). A probe is one small Node program (the same text in both
 * places) that prints one JSON line: `{ ok, detail, code? }`. `nodetool` runs as itself.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { nodetoolArgv } from '@trellis/local/harness';
import { runInPod, type PodLaunch } from '@trellis/local/pods';
import type { Probe, ProbeAction } from './bypass-plan.ts';

/** What one probe found. */
export interface ProbeResult {
  ok: boolean;
  /** What happened, for the failure message (never key material). */
  detail: string;
  /** The error code (ECONNREFUSED, EACCES…) when it failed with one. */
  code?: string;
}

// kafkajs by absolute path: the probe runs with `node -e`, outside any package. The pods see the
// repository (world-readable) and the toolchain (revealed read-only), so the same path works there.
const KAFKAJS = createRequire(import.meta.url).resolve('kafkajs');

/**
 * The probe program (CommonJS, for `node -e`): the action comes as JSON in argv[1]. Handshakes:
 * CQL v4 OPTIONS (a server answers SUPPORTED, opcode 6), Kafka ApiVersions v0 (the answer echoes the
 * correlation id, error 0), Java RMI's JRMI header (the server acknowledges with 0x4e).
 */
const PROBE = String.raw`
const a = JSON.parse(process.argv[1]);
const out = (r) => { process.stdout.write(JSON.stringify(r) + '\n'); process.exit(0); };
const fail = (e, what) => out({ ok: false, code: e && e.code, detail: what + ': ' + (e && e.code ? e.code + ' ' : '') + (e && e.message) });
const hello = {
  'cql-options': '040000010500000000',
  'kafka-api-versions': '0000001000120000000000070006627970617373',
  jrmi: '4a524d4900024b',
};
function answered(h, b) {
  if (h === 'cql-options' && b.length >= 9)
    return b[0] === 0x84 && b[4] === 0x06 ? 'SUPPORTED' : 'answered ' + b.subarray(0, 9).toString('hex');
  if (h === 'kafka-api-versions' && b.length >= 10)
    return b.readInt32BE(4) === 7 && b.readInt16BE(8) === 0 ? 'ApiVersions answered' : 'answered ' + b.subarray(0, 10).toString('hex');
  if (h === 'jrmi' && b.length >= 1) return b[0] === 0x4e ? 'RMI ProtocolAck' : 'answered ' + b.subarray(0, 8).toString('hex');
  return null;
}
if (a.kind === 'tcp') {
  const s = require('node:net').connect({ host: a.host, port: a.port });
  let got = Buffer.alloc(0); let connected = false;
  const timer = setTimeout(() => out({ ok: false, code: connected ? 'NOANSWER' : 'ETIMEDOUT', detail: connected ? 'connected; no answer in 5 s (got ' + got.length + ' bytes)' : 'no connection in 5 s' }), 5000);
  s.on('connect', () => {
    connected = true;
    if (!a.handshake) out({ ok: true, detail: 'connected' });
    s.write(Buffer.from(hello[a.handshake], 'hex'));
  });
  s.on('data', (d) => {
    got = Buffer.concat([got, d]);
    const v = answered(a.handshake, got);
    if (v !== null) out({ ok: v.indexOf('answered ') !== 0, detail: 'connected; ' + v });
  });
  s.on('error', (e) => { clearTimeout(timer); fail(e, connected ? 'connected, then' : 'connect'); });
  s.on('close', () => out({ ok: false, code: connected ? 'ECLOSED' : 'ECONNRESET', detail: connected ? 'connected; closed after ' + got.length + ' bytes' + (got.length ? ' (' + got.subarray(0, 16).toString('hex') + ')' : '') : 'closed' }));
} else if (a.kind === 'http') {
  const u = new URL(a.url);
  const req = require('node:http').request(u, { method: a.method, headers: a.headers, timeout: 5000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => out({ ok: a.anyStatus === true || (res.statusCode >= 200 && res.statusCode < 300), code: 'HTTP' + res.statusCode, detail: 'HTTP ' + res.statusCode + ' ' + body.slice(0, 120) }));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in 5 s'), { code: 'ETIMEDOUT' })));
  req.on('error', (e) => fail(e, 'request'));
  if (a.body) req.write(a.body);
  req.end();
} else if (a.kind === 'read') {
  try { const n = require('node:fs').readFileSync(a.file).length; out({ ok: true, detail: 'read ' + n + ' bytes' }); }
  catch (e) { fail(e, 'read'); }
} else if (a.kind === 'kafka') {
  const { Kafka, logLevel } = require(process.argv[2]);
  const fs = require('node:fs');
  const ssl = a.tls ? { ca: fs.readFileSync(a.tls.ca), cert: fs.readFileSync(a.tls.cert), key: fs.readFileSync(a.tls.key), checkServerIdentity: () => undefined } : false;
  const kafka = new Kafka({ clientId: 'bypass-probe', brokers: [a.bootstrap], ssl, connectionTimeout: 3000, requestTimeout: 5000, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
  const p = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  setTimeout(() => out({ ok: false, code: 'ETIMEDOUT', detail: 'no produce in 15 s' }), 15000).unref();
  (async () => {
    await p.connect();
    if (a.topic) await p.send({ topic: a.topic, acks: -1, messages: [{ key: 'bypass', value: 'bypass probe (not an order)' }] });
    out({ ok: true, detail: a.topic ? 'produced to ' + a.topic : 'connected' });
  })().catch((e) => fail(e, 'produce'));
} else out({ ok: false, detail: 'unknown probe ' + a.kind });
`;

function parse(stdout: string, stderr: string, code: number): ProbeResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    return {
      ok: false,
      code: `EXIT${code}`,
      detail: `no result (exit ${code}): ${stderr.trim().slice(0, 300)}`,
    };
  }
}

function onHost(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The command line of an action: the probe program, or nodetool. */
async function argvOf(
  action: ProbeAction,
  cassandraDir: string,
): Promise<{ command: string; args: string[] }> {
  if (action.kind === 'nodetool')
    return nodetoolArgv({ host: action.host, jmxPort: action.port, dir: cassandraDir }, ['status']);
  return { command: process.execPath, args: ['-e', PROBE, JSON.stringify(action), KAFKAJS] };
}

/**
 * Run one probe. `pods` gives each pod's launch (the stack output `pods`); `cassandraDir` is
 * Cassandra's run directory (nodetool's home and logging config).
 */
export async function runProbe(
  probe: Probe,
  pods: Record<string, { launch: PodLaunch }>,
  cassandraDir: string,
): Promise<ProbeResult> {
  const { command, args } = await argvOf(probe.action, cassandraDir);
  let r: { code: number; stdout: string; stderr: string };
  if (probe.from.kind === 'host') r = await onHost(command, args);
  else {
    const pod = pods[probe.from.pod];
    if (pod === undefined) throw new Error(`pods.${probe.from.pod}: no such pod in the stack`);
    r = await runInPod(pod.launch, command, args, { timeoutMs: 60_000 });
  }
  if (probe.action.kind === 'nodetool')
    return r.code === 0
      ? { ok: true, detail: 'nodetool status answered' }
      : {
          ok: false,
          code: `EXIT${r.code}`,
          detail: `nodetool exited ${r.code}: ${r.stderr.trim().slice(-300)}`,
        };
  return parse(r.stdout, r.stderr, r.code);
}

/** A probe in words, for failure messages: `from pod ledger: tcp 127.0.0.1:28720`. */
export function describeProbe(p: Probe): string {
  const from = p.from.kind === 'host' ? 'from the host' : `from pod ${p.from.pod}`;
  const a = p.action;
  const what =
    a.kind === 'http'
      ? `${a.method} ${a.url}`
      : a.kind === 'tcp'
        ? `tcp ${a.host}:${a.port}${a.handshake ? ` (${a.handshake})` : ''}`
        : a.kind === 'read'
          ? `read ${a.file}`
          : a.kind === 'kafka'
            ? `${a.tls ? 'mTLS' : 'plaintext'} produce to ${a.bootstrap}${a.topic ? ` (${a.topic})` : ''}`
            : `nodetool -h ${a.host} -p ${a.port} status`;
  return `${from}: ${what}`;
}
