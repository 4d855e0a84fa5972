/**
 * What reading the edge certificate at each TLS handshake costs nginx (ADR 0032), and that a renewed
 * certificate reaches new connections while an established keep-alive connection stays open. One
 * nginx (one worker, the harness's build) with two TLS servers on the same files: one names the
 * paths (read at start and at each reload), one puts them in variables (read at each handshake).
 * Full handshakes, then resumed ones (TLS 1.3 tickets), in rounds of `handshakes`, the two servers interleaved and
 * alternating which goes first; the worker's CPU from /proc. Then a certificate swap (new directory,
 * `..data` re-pointed by one rename, as the stack's writer does) under an open keep-alive connection.
 * Run it under the component lock:
 *
 *   flock /work/notes/component.lock node packages/local/bench/nginx-cert-per-handshake.ts [handshakes] [rounds]
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { startNginx } from '../src/harness/nginx.ts';
import { freePort } from '../src/harness/ports.ts';
import { CertificateAuthority } from '../src/harness/tls.ts';

const handshakes = Number(process.argv[2] ?? 300);
const rounds = Number(process.argv[3] ?? 6);
const tick = 10; // ms per clock tick (USER_HZ 100)

const root = mkdtempSync(join(tmpdir(), 'trellis-nginx-cert-'));
const tlsDir = join(root, 'tls');
mkdirSync(tlsDir);
const ca = await CertificateAuthority.create({ commonName: 'bench CA' });
let generation = 0;

/** A new certificate in a new directory, swapped in by one rename of `..data`. */
async function renew(): Promise<void> {
  generation++;
  const c = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'], usages: ['server'] });
  const version = `..v${generation}`;
  mkdirSync(join(tlsDir, version));
  writeFileSync(join(tlsDir, version, 'cert.pem'), c.certPem + ca.rootPem);
  writeFileSync(join(tlsDir, version, 'key.pem'), c.keyPem, { mode: 0o600 });
  symlinkSync(version, join(tlsDir, '..data_tmp'));
  renameSync(join(tlsDir, '..data_tmp'), join(tlsDir, '..data'));
  if (generation === 1)
    for (const n of ['cert.pem', 'key.pem']) symlinkSync(join('..data', n), join(tlsDir, n));
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * tick;
}

/** TLS sessions (tickets) per port, for resumed handshakes. */
const tickets = new Map<number, Buffer>();
let resumed = 0;

/**
 * One handshake, full, or resumed from the port's last ticket; the serial of the certificate served
 * (the same object on a resumed one). Keeps the newest ticket.
 */
function handshake(port: number, resume = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = resume ? tickets.get(port) : undefined;
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        ca: ca.rootPem,
        servername: 'localhost',
        ...(session ? { session } : {}),
      },
      () => {
        if (s.isSessionReused()) resumed++;
        const serial = s.getPeerCertificate().serialNumber;
        // Under TLS 1.3 the ticket comes after the handshake: wait for one before closing.
        if (!resume || tickets.has(port)) {
          s.end();
          resolve(serial);
        } else s.once('session', () => (s.end(), resolve(serial)));
      },
    );
    s.on('session', (t: Buffer) => tickets.set(port, t));
    s.on('error', reject);
  });
}

await renew();
const cert = join(tlsDir, 'cert.pem');
const key = join(tlsDir, 'key.pem');
const [once, each, plain] = [await freePort(), await freePort(), await freePort()];
const nginx = await startNginx({
  dir: join(root, 'nginx'),
  workerProcesses: 1,
  readyUrl: `http://127.0.0.1:${plain}/`,
  config: `
map $ssl_server_name $cert_path { default "${cert}"; }
map $ssl_server_name $key_path { default "${key}"; }
server { listen 127.0.0.1:${plain}; location / { return 200 'ok'; } }
server { listen 127.0.0.1:${once} ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; location / { return 200 'once'; } }
server { listen 127.0.0.1:${each} ssl; ssl_certificate $cert_path; ssl_certificate_key $key_path; location / { return 200 'each'; } }
`,
});
try {
  const master = nginx.process.pid;
  const workers = (): string =>
    execFileSync('pgrep', ['-P', String(master)])
      .toString()
      .trim();
  const worker = Number(workers());
  const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(
    `${new Date().toISOString()} load ${load()}; ${rounds} rounds of ${handshakes} handshakes per server, full then resumed`,
  );
  for (const resume of [false, true]) {
    const kind = resume ? 'resumed' : 'full';
    const sum = { once: 0, each: 0 };
    resumed = 0;
    for (let r = 0; r < rounds; r++) {
      const order: ['once' | 'each', number][] =
        r % 2 === 0
          ? [
              ['once', once],
              ['each', each],
            ]
          : [
              ['each', each],
              ['once', once],
            ];
      for (const [name, port] of order) {
        const c0 = cpuMs(worker);
        const t0 = Date.now();
        for (let i = 0; i < handshakes; i++) await handshake(port, resume);
        const ms = cpuMs(worker) - c0;
        sum[name] += ms;
        console.log(
          `round ${r + 1} ${kind} ${name}: worker ${ms} CPU-ms (${(ms / handshakes).toFixed(3)} per handshake), ${Date.now() - t0} ms wall`,
        );
      }
    }
    const n = rounds * handshakes;
    console.log(
      `per ${kind} handshake (${resumed} of ${2 * n} resumed): read once ${(sum.once / n).toFixed(3)} CPU-ms, ` +
        `read at each ${(sum.each / n).toFixed(3)} CPU-ms (ratio ${(sum.each / sum.once).toFixed(2)}, ` +
        `+${((sum.each - sum.once) / n).toFixed(3)} CPU-ms); load ${load()}`,
    );
  }

  // A keep-alive connection across a renewal.
  const kept: TLSSocket = connect({
    host: '127.0.0.1',
    port: each,
    ca: ca.rootPem,
    servername: 'localhost',
  });
  await new Promise((r) => kept.once('secureConnect', r));
  const servedBefore = kept.getPeerCertificate().serialNumber;
  const get = (): Promise<string> =>
    new Promise((resolve) => {
      kept.once('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0] ?? ''));
      kept.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
  const workersBefore = workers();
  console.log(`kept connection, before the renewal: ${await get()}`);
  await renew();
  console.log(
    `kept connection, after the renewal: ${await get()} (serial unchanged: ${kept.getPeerCertificate().serialNumber === servedBefore})`,
  );
  console.log(
    `new connection to the per-handshake server gets the new certificate: ${(await handshake(each)) !== servedBefore}`,
  );
  console.log(
    `new connection to the read-once server still gets the old one: ${(await handshake(once)) === servedBefore}`,
  );
  console.log(
    `same master and workers: ${nginx.process.pid === master && workers() === workersBefore}`,
  );
  kept.end();
} finally {
  await nginx.stop();
  rmSync(root, { recursive: true, force: true });
}
