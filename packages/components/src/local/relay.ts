import * as pulumi from '@pulumi/pulumi';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { LocalProcess } from './process.ts';

/**
 * Accepts on `listen:port` and splices each connection to `target:port`, for every port given. TLS
 * stays end to end (the bytes are not looked at); a side that errors or closes closes the other.
 */
const RELAY_SCRIPT = `import { connect, createServer } from 'node:net';
const [listen, target, ...ports] = process.argv.slice(2);
for (const port of ports.map(Number)) {
  createServer((down) => {
    const up = connect({ host: target, port });
    const close = () => { down.destroy(); up.destroy(); };
    down.on('error', close); up.on('error', close); down.on('close', close); up.on('close', close);
    down.pipe(up); up.pipe(down);
  }).listen({ host: listen, port }, () => console.log('relay ' + listen + ':' + port + ' -> ' + target + ':' + port));
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
          .apply((l) => [join(args.dir, 'relay.mjs'), l, target, ...ports.map(String)]),
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
