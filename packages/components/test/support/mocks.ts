/**
 * Recording mocks for Pulumi unit tests (STYLE.md §7): every new resource's inputs are kept, a `call`
 * (provider function) the test did not register throws, and the project's dynamic resources (mesh PKI,
 * generated passwords) get state from their real implementation (pkiMock.ts).
 */
import * as pulumi from '@pulumi/pulumi';
import { dynamicState } from './pkiMock.ts';

type Inputs = Record<string, unknown>;

/** The signature key Pulumi uses to mark a serialized secret (sdk/nodejs/runtime/rpc.ts). */
export const secretSig = '4dabf18193072939515e22adb298388d';

/** True when a recorded input value is a Pulumi secret. */
export function isSecretValue(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Inputs)[secretSig] !== undefined;
}

/** A recorded value with every secret wrapper removed. */
export function unwrap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrap);
  if (typeof v === 'object' && v !== null) {
    if (isSecretValue(v)) return unwrap((v as Inputs).value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

/** One resource the program registered. */
export interface RecordedResource {
  type: string;
  name: string;
  /** Inputs with secrets unwrapped. */
  inputs: Inputs;
  /** Inputs as sent, with secret wrappers (see {@link isSecretValue}). */
  raw: Inputs;
  state: Inputs;
}

/** Extra state for a resource type (e.g. outputs a provider would compute). */
export type StateFn = (name: string, inputs: Inputs) => Inputs | Promise<Inputs>;

/** Mocks that record resources and reject unexpected calls. */
export class RecordingMocks implements pulumi.runtime.Mocks {
  readonly resources: RecordedResource[] = [];
  readonly unexpectedCalls: string[] = [];
  private readonly calls: Map<string, (inputs: Inputs) => Inputs>;
  private readonly states: Map<string, StateFn>;
  private readonly fallback: ((type: string, name: string, inputs: Inputs) => Inputs) | undefined;

  constructor(
    opts: {
      calls?: Record<string, (inputs: Inputs) => Inputs>;
      states?: Record<string, StateFn>;
      /** State for types without an entry in `states` (e.g. an ARN for every aws:* resource). */
      fallback?: (type: string, name: string, inputs: Inputs) => Inputs;
    } = {},
  ) {
    this.fallback = opts.fallback;
    this.calls = new Map(Object.entries(opts.calls ?? {}));
    this.states = new Map(Object.entries(opts.states ?? {}));
  }

  async newResource(
    args: pulumi.runtime.MockResourceArgs,
  ): Promise<pulumi.runtime.MockResourceResult> {
    const raw = (args.inputs ?? {}) as Inputs;
    const inputs = unwrap(raw) as Inputs;
    const dynamic = await dynamicState(args.type, inputs);
    const stateFn = this.states.get(args.type);
    const extra = stateFn
      ? await stateFn(args.name, inputs)
      : (this.fallback?.(args.type, args.name, inputs) ?? {});
    const state = { ...inputs, ...(dynamic ?? {}), ...extra };
    this.resources.push({ type: args.type, name: args.name, inputs, raw, state });
    return { id: `${args.name}-id`, state };
  }

  call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
    const handler = this.calls.get(args.token);
    if (!handler) {
      this.unexpectedCalls.push(args.token);
      throw new Error(`unexpected provider call ${args.token}`);
    }
    return handler(args.inputs as Inputs);
  }

  /** Every recorded resource of one type token. */
  ofType(type: string): RecordedResource[] {
    return this.resources.filter((r) => r.type === type);
  }

  /** The one resource of a type whose name ends with the suffix; throws when absent or ambiguous. */
  one(type: string, nameSuffix: string): RecordedResource {
    const found = this.ofType(type).filter((r) => r.name.endsWith(nameSuffix));
    if (found.length !== 1) {
      throw new Error(
        `expected one ${type} named *${nameSuffix}, found ${found.length}: ${this.ofType(type)
          .map((r) => r.name)
          .join(', ')}`,
      );
    }
    return found[0] as RecordedResource;
  }

  /** Kubernetes custom resources of one kind. */
  kind(kind: string): RecordedResource[] {
    return this.resources.filter(
      (r) => r.type.startsWith('kubernetes:') && r.type.endsWith(`:${kind}`),
    );
  }
}

/** Resolve an Output (or a plain value) to its value and whether it is secret. */
export async function resolve<T>(value: pulumi.Input<T>): Promise<{ value: T; secret: boolean }> {
  const out = pulumi.output(value);
  const secret = await pulumi.isSecret(out);
  const resolved = await new Promise<T>((res) => out.apply((v) => res(v as T)));
  return { value: resolved, secret };
}

/** Wait until no new resource has been registered for a few ticks (apply callbacks register late). */
export async function settle(mocks: RecordingMocks, quietMs = 150, maxMs = 20_000): Promise<void> {
  const start = Date.now();
  let last = -1;
  let quietSince = Date.now();
  while (Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 25));
    if (mocks.resources.length !== last) {
      last = mocks.resources.length;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) {
      return;
    }
  }
  throw new Error(`resources still being registered after ${maxMs} ms`);
}
