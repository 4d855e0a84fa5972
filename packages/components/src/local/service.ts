import * as pulumi from '@pulumi/pulumi';
import { isAbsolute } from 'node:path';
import type { PodLaunch } from '@trellis/local/pods';
import type { AdminConnection } from './cassandra-impl.ts';
import { LocalProcess } from './process.ts';
import type { SchemaInputs, SchemaOutputs } from './service-impl.ts';

// Captured by the serialized provider instead of module objects (see process.ts).
const IMPL = new URL('./service-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./service-impl.ts');

const schemaProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: SchemaOutputs, news: SchemaInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { changes: olds.cql !== impl.cqlOf(news.statements), replaces: [] };
  },
  async create(inputs: SchemaInputs) {
    const impl = (await import(IMPL)) as Impl;
    return {
      id: `${inputs.admin.host}:${inputs.admin.port}`,
      outs: await impl.applySchema(inputs),
    };
  },
  async update(_id: string, _olds: SchemaOutputs, news: SchemaInputs) {
    const impl = (await import(IMPL)) as Impl;
    // Every statement is idempotent (IF NOT EXISTS); tables that left the list are kept with their data.
    return { outs: await impl.applySchema(news) };
  },
  async delete() {
    // Nothing to undo: tables live in Cassandra's data dir, purged with the node.
  },
};

/** A service's table DDL, applied as platform-admin, so that the service needs no CREATE grant. */
export class CqlSchema extends pulumi.dynamic.Resource {
  declare public readonly cql: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      admin: pulumi.Input<AdminConnection>;
      localDataCenter: pulumi.Input<string>;
      statements: readonly string[];
    },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      schemaProvider,
      name,
      {
        admin: args.admin,
        localDataCenter: args.localDataCenter,
        statements: [...args.statements],
        cql: undefined,
      },
      opts,
      'trellis-local',
      'CqlSchema',
    );
  }
}

/** Inputs of a {@link LocalService}. */
export interface LocalServiceArgs {
  /** The workload this process is (a key of the model's workloads), for names and logs. */
  workload: string;
  /** The server file Node runs (absolute), e.g. `packages/services/orders-api/src/server.ts`. */
  entry: string;
  /** The process's directory (a LocalProcess dir: log, supervisor state). */
  dir: string;
  /** Where the app listens (`PORT`); its sidecar's inbound cluster points here. */
  port: number;
  /** `HOST`. @default '127.0.0.1' (only the sidecar may reach the app) */
  host?: string;
  /** The service's own variables (data stores, identity headers), added to `HOST` and `PORT`. */
  env?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Table DDL applied as platform-admin before the first start. @default none */
  schema?: {
    statements: readonly string[];
    admin: pulumi.Input<AdminConnection>;
    localDataCenter: pulumi.Input<string>;
  };
  /** The Node binary. @default the one running the Pulumi program */
  node?: string;
  /** Readiness path, answered 200 once the service's dependencies are connected. @default '/readyz' */
  readyPath?: string;
  /** @default 180_000 */
  readyTimeoutMs?: number;
  /** SIGTERM drain before SIGKILL. @default 15_000 */
  stopGraceMs?: number;
  /**
   * Run in this pod, as its user: `host` is then the pod's own loopback, reached by its sidecar
   * alone. @default none: on the host
   */
  pod?: pulumi.Input<PodLaunch>;
}

const defaults = {
  host: '127.0.0.1',
  readyPath: '/readyz',
  readyTimeoutMs: 180_000,
  stopGraceMs: 15_000,
};

/**
 * A smoke service (`packages/services/*`) as a supervised Node process on loopback behind its
 * sidecar, ready once `GET /readyz` answers 200 (Cassandra and Kafka reached through the sidecar).
 * Its tables are created by platform-admin, so the service's own role needs no CREATE.
 */
export class LocalService extends pulumi.ComponentResource {
  /** `http://<host>:<port>`: the app itself, plaintext on loopback (its sidecar's upstream). */
  public readonly url: string;
  public readonly logFile: pulumi.Output<string>;
  public readonly process: LocalProcess;
  public readonly schema?: CqlSchema;

  constructor(name: string, args: LocalServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Service', name, {}, opts);
    if (!isAbsolute(args.entry))
      throw new pulumi.ResourceError(
        `${name}: entry must be an absolute path, got '${args.entry}'`,
        this,
      );
    if (!Number.isInteger(args.port) || args.port < 1 || args.port > 65_535)
      throw new pulumi.ResourceError(`${name}: port must be a TCP port, got ${args.port}`, this);
    const readyPath = args.readyPath ?? defaults.readyPath;
    if (!readyPath.startsWith('/'))
      throw new pulumi.ResourceError(
        `${name}: readyPath must start with '/', got '${readyPath}'`,
        this,
      );
    const host = args.host ?? defaults.host;
    this.url = `http://${host}:${args.port}`;

    if (args.schema)
      this.schema = new CqlSchema(
        `${name}-schema`,
        {
          admin: args.schema.admin,
          localDataCenter: args.schema.localDataCenter,
          statements: args.schema.statements,
        },
        { parent: this },
      );

    this.process = new LocalProcess(
      `${name}-app`,
      {
        dir: args.dir,
        command: args.node ?? process.execPath,
        args: [args.entry],
        env: pulumi.output(args.env ?? {}).apply((env) => ({
          ...env,
          HOST: host,
          PORT: String(args.port),
        })),
        ready:
          args.pod === undefined
            ? { kind: 'http', url: `${this.url}${readyPath}`, status: 200 }
            : pulumi.output(args.pod).apply((p) => ({
                kind: 'http' as const,
                url: `${this.url}${readyPath}`,
                status: 200,
                netns: p.netns,
              })),
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: args.stopGraceMs ?? defaults.stopGraceMs,
        ...(args.pod !== undefined ? { pod: args.pod } : {}),
      },
      { parent: this, dependsOn: this.schema ? [this.schema] : [] },
    );
    this.logFile = this.process.logFile;

    this.registerOutputs({ url: this.url, logFile: this.logFile });
  }
}
