import * as pulumi from '@pulumi/pulumi';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { LocalProcess } from './process.ts';

/**
 * Accepts on `listen:port` and splices each connection to `target:port`, for every port given. TLS
 * stays end to end (the bytes are not looked at); a side that errors or closes closes the other.
 *
 * With `--replay-unanswered` (before the ports): while the server has not sent a byte, the relay keeps
 * what the client sent, and when the server accepted the connection and closes it without answering, it
 * dials again and sends the same bytes, up to 4 tries, 0.1, 0.2 and 0.4 s apart. A server that refuses
 * the connection (it is down) is not dialled again: the client learns at once. Safe for TLS only, which every relay of
 * the stack carries: a TLS server answers the ClientHello before any application byte is read, so a server
 * that closed without a byte has handled nothing. Keycloak closes new connections that way for about
 * 0.1 s each time it reloads its certificate (ADR 0031); once the server has answered, a close is passed on.
 */
export const RELAY_SCRIPT = `import { connect, createServer } from 'node:net';
const [listen, target, ...rest] = process.argv.slice(2);
const replay = rest[0] === '--replay-unanswered';
const ports = (replay ? rest.slice(1) : rest).map(Number);
const WAITS_MS = [100, 200, 400];
function splice(down, port) {
  const up = connect({ host: target, port });
  const close = () => { down.destroy(); up.destroy(); };
  down.on('error', close); up.on('error', close); down.on('close', close); up.on('close', close);
  down.pipe(up); up.pipe(down);
}
function spliceReplaying(down, port) {
  let up = null, answered = false, closed = false, tries = 0;
  const kept = [];
  const close = () => { if (closed) return; closed = true; down.destroy(); if (up) up.destroy(); };
  const dial = () => {
    if (closed) return;
    const u = connect({ host: target, port });
    up = u; tries++;
    let connected = false;
    u.on('connect', () => { connected = true; });
    for (const b of kept) u.write(b);
    u.on('data', (b) => {
      answered = true; kept.length = 0;
      if (!down.write(b)) { u.pause(); down.once('drain', () => u.resume()); }
    });
    u.on('end', () => { if (answered) down.end(); });
    let gone = false;
    const lost = () => {
      if (gone) return; gone = true;
      // Only a server that accepted and then closed is dialled again; one that refuses (down) is not.
      if (connected && !answered && !closed && tries <= WAITS_MS.length) {
        console.log('replay ' + port + ': the server closed before answering; dialling again (try ' + (tries + 1) + ')');
        setTimeout(dial, WAITS_MS[tries - 1]);
      }
      else close();
    };
    u.on('error', lost); u.on('close', lost);
  };
  down.on('data', (b) => {
    if (!answered) kept.push(b);
    if (up && up.writable && !up.write(b)) { down.pause(); up.once('drain', () => down.resume()); }
  });
  down.on('end', () => { if (up && up.writable) up.end(); });
  down.on('error', close); down.on('close', close);
  dial();
}
for (const port of ports) {
  createServer((down) => (replay ? spliceReplaying : splice)(down, port))
    .listen({ host: listen, port }, () => console.log('relay ' + listen + ':' + port + ' -> ' + target + ':' + port + (replay ? ' (replaying unanswered connections)' : '')));
}
process.on('SIGTERM', () => process.exit(0));
`;

/** Inputs of a {@link LocalRelay}. */
export interface LocalRelayArgs {
  /** The relay's directory (a LocalProcess dir). */
  dir: string;
  /** Where it accepts: the host's end of the pod link, or 127.0.0.1 for a server in a pod. */
  listen: pulumi.Input<string>;
  /** Where the servers listen. @default '127.0.0.1' */
  target?: string;
  /** The ports to relay, each to the same port on `target`. */
  ports: number[];
  /**
   * Dial again a connection the server closed before sending a byte, replaying what the client sent (see
   * {@link RELAY_SCRIPT}; for TLS servers only). @default false
   */
  replayUnanswered?: boolean;
}

/**
 * A TCP relay on the host from the pod link's host address to the stack's servers on loopback
 * (Cassandra's native port, Keycloak, a workload's Kafka listener), for the pods' sidecars: a pod's
 * 127.0.0.1 is its own, and Cassandra and Keycloak bind one address. A stop-gap until the servers
 * run in pods themselves (ADR 0012); it copies bytes, so it costs a little on every data call.
 * The other way round, it keeps a server that runs in a pod (Keycloak) at its port on the host's
 * 127.0.0.1 (`listen` 127.0.0.1, `target` the pod's address) for the host's clients.
 */
export class LocalRelay extends pulumi.ComponentResource {
  public readonly process: LocalProcess;

  constructor(name: string, args: LocalRelayArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Relay', name, {}, opts);
    if (args.ports.length === 0)
      throw new pulumi.ResourceError(`${name}: ports must name at least one port`, this);
    for (const p of args.ports)
      if (!Number.isInteger(p) || p < 1 || p > 65_535)
        throw new pulumi.ResourceError(`${name}: ports: ${p} is not a TCP port`, this);
    const target = args.target ?? '127.0.0.1';
    if (isIP(target) === 0)
      throw new pulumi.ResourceError(`${name}: target: '${target}' is not an IP address`, this);
    const ports = [...new Set(args.ports)].sort((a, b) => a - b);
    const first = ports[0] ?? 0;
    this.process = new LocalProcess(
      `${name}-relay`,
      {
        dir: args.dir,
        command: process.execPath,
        args: pulumi
          .output(args.listen)
          .apply((l) => [
            join(args.dir, 'relay.mjs'),
            l,
            target,
            ...(args.replayUnanswered === true ? ['--replay-unanswered'] : []),
            ...ports.map(String),
          ]),
        env: {},
        files: { 'relay.mjs': RELAY_SCRIPT },
        ready: pulumi
          .output(args.listen)
          .apply((host) => ({ kind: 'tcp' as const, host, port: first })),
        readyTimeoutMs: 30_000,
        stopGraceMs: 2_000,
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
