/**
 * TCP reachability probes the pod tests share: the same connect from the host (here) and, as a
 * `node -e` program, from inside a pod through the pod launcher.
 */
import { connect } from 'node:net';

/** Open a TCP connection from here; 'connected', 'timeout' or the error code. */
export function connectFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 5_000 });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('timeout', () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** {@link connectFromHost} as a `node -e` program (argv: host, port): prints the same answers. */
export const CONNECT_SCRIPT = `const [host, port] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port), timeout: 5000 });
s.on('connect', () => { console.log('connected'); s.destroy(); });
s.on('timeout', () => { console.log('timeout'); s.destroy(); });
s.on('error', (e) => console.log(e.code));`;
