// k6 from our source build against a loopback HTTP server: the JSON summary counts the requests the server
// saw, and a failing threshold exits 99 (exitcodes.ThresholdsHaveFailed in go.k6.io/k6 errext/exitcodes).
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { k6, k6Env } from '../src/toolchain/k6.ts';

let dir = '';
let bin = '';
let env: NodeJS.ProcessEnv = {};
let server: Server | undefined;
let target = '';
let served = 0;

const SCRIPT = `
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: 1,
  iterations: 5,
  thresholds: JSON.parse(__ENV.THRESHOLDS),
};

export default function () {
  const res = http.get(__ENV.TARGET + '/hello');
  check(res, { 'status is 200': (r) => r.status === 200 });
}
`;

interface Result {
  code: number;
  output: string;
}

/** Run one bounded k6 test; never throws, so that tests can assert on the exit code. */
function k6Run(thresholds: Record<string, string[]>, summary: string): Promise<Result> {
  const args = [
    'run',
    '--quiet',
    '--no-color',
    // An empty address turns off k6's REST API server (default localhost:6565), so parallel runs never clash.
    '--address=',
    `--summary-export=${summary}`,
    '-e',
    `TARGET=${target}`,
    '-e',
    `THRESHOLDS=${JSON.stringify(thresholds)}`,
    join(dir, 'script.js'),
  ];
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: 120_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

beforeAll(async () => {
  // A cold build of k6 takes several minutes on two cores.
  const tool = await k6Env();
  bin = tool.bin;
  env = tool.env;
  dir = mkdtempSync(join(tmpdir(), 'trellis-k6-'));
  writeFileSync(join(dir, 'script.js'), SCRIPT);
  server = createServer((req, res) => {
    served++;
    res.writeHead(req.url === '/hello' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end('hello\n');
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60 * 60_000);

afterAll(async () => {
  if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('k6', () => {
  it('reports the pinned version', async () => {
    const c = await k6.check();
    expect(c.problem).toBeUndefined();
    expect(c.found).toBe('1.8.1');
    expect(c.location).toBe(bin);
  });

  it('runs a bounded script and its JSON summary shows the requests', async () => {
    served = 0;
    const summaryPath = join(dir, 'pass.json');
    const r = await k6Run({ http_req_failed: ['rate==0'], checks: ['rate==1'] }, summaryPath);
    expect(r.code, r.output).toBe(0);
    expect(served).toBe(5);
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as {
      metrics: Record<string, Record<string, unknown>>;
    };
    expect(summary.metrics.http_reqs?.count).toBe(5);
    expect(summary.metrics.iterations?.count).toBe(5);
    expect(summary.metrics.checks).toMatchObject({ passes: 5, fails: 0 });
  });

  it('exits 99 when a threshold fails', async () => {
    served = 0;
    // No request completes in under 0 ms.
    const r = await k6Run({ http_req_duration: ['max<0'] }, join(dir, 'fail.json'));
    expect(r.code, r.output).toBe(99);
    expect(r.output).toMatch(/thresholds on metrics 'http_req_duration' have been crossed/);
    expect(served).toBe(5);
  });
});
