/**
 * The API server's only way into "the cluster": an HTTP CONNECT proxy on a unix socket that refuses every
 * tunnel and remembers where it was asked to go. With it, a webhook, an aggregated API or a CRD conversion
 * that points at a Service can never send a packet off loopback; the test sees the attempt instead.
 */
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';

/** The refusing proxy; `attempts` lists the `host:port` of each CONNECT, oldest first. */
export interface EgressTrap {
  readonly socket: string;
  readonly attempts: readonly string[];
  close(): Promise<void>;
}

/** Listen on `socket` (removed first if a crashed run left it) and refuse every CONNECT with 403. */
export async function startEgressTrap(socket: string): Promise<EgressTrap> {
  rmSync(socket, { force: true });
  const attempts: string[] = [];
  const server: Server = createServer((_req, res) => {
    res.writeHead(405, { connection: 'close' }).end('only CONNECT is spoken here\n');
  });
  server.on('connect', (req, clientSocket) => {
    attempts.push(req.url ?? '');
    // The socket is ours once 'connect' fires; the API server may reset it as soon as it reads the 403.
    clientSocket.on('error', () => undefined);
    clientSocket.end(
      'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n' +
        'trellis: the test control plane sends no traffic into the cluster\n',
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socket,
    attempts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(socket, { force: true });
          resolve();
        });
      }),
  };
}
