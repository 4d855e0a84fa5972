/**
 * `bind(model, environment)`: the only place where an environment changes the model. It copies the
 * model, writes in what the environment decides (issuers, hosts, the edge identity, namespaces,
 * budget overrides), validates the result again, and places every workload with the environment's
 * allocator: inbound, app, admin and egress endpoints and SVID locations. Pure; never throws.
 */
import { formatErrors, formatPath, rootPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';
import {
  dataServiceSpiffeId,
  dataServices,
  namespaceOf,
  collectorSpiffeId,
  scraperSpiffeId,
  spiffeId,
} from '../identity.ts';
import type { DataService } from '../identity.ts';
import type { Model } from '../schema.ts';
import { validateModel } from '../validate.ts';
import type { ValidModel } from '../validate.ts';
import { AllocationError, collisions } from './allocator.ts';
import type { Allocator, Listener, ListenerRole, WorkloadSlot } from './allocator.ts';
import { applyBudgets } from './budgets.ts';
import { exampleAllocator } from './example.ts';
import { kubernetesAllocator, patchKubernetes } from './kubernetes.ts';
import { localAllocator, patchLocal } from './local.ts';
import type { LocalProviderExtras } from './local.ts';
import { peerPort } from './peers.ts';
import type {
  BindResult,
  Binding,
  BoundModel,
  Endpoint,
  Environment,
  WorkloadBinding,
} from './types.ts';

const environmentKinds: readonly string[] = ['local', 'kubernetes', 'example'];

/** Bind `model` to `environment`: a bound model, or every problem with its path. Never throws. */
export function bind(model: ValidModel, environment: Environment): BindResult {
  try {
    return bindModel(model, environment);
  } catch (err) {
    // A safety net, as in validateModel: a bug must still come back as an error.
    const reason = err instanceof Error ? err.message : String(err);
    return { ok: false, errors: [{ path: rootPath, reason: `internal error: ${reason}` }] };
  }
}

const fail = (errors: PolicyError[]): BindResult => ({ ok: false, errors });

function bindModel(model: ValidModel, env: Environment): BindResult {
  if (!environmentKinds.includes(env.kind))
    return fail([
      {
        path: 'environment.kind',
        reason: `must be one of ${environmentKinds.join(', ')}, got ${String(env.kind)}`,
      },
    ]);
  // A bound model may be bound again: only the model's own fields are copied.
  const { binding: _, ...own } = model as Partial<BoundModel>;
  const data = structuredClone(own) as Model;
  let providers: LocalProviderExtras = {};
  const errors: PolicyError[] = [];
  if (env.kind === 'local') {
    const p = patchLocal(data, env);
    providers = p.providers;
    errors.push(...p.errors);
  } else if (env.kind === 'kubernetes') errors.push(...patchKubernetes(data, env));
  errors.push(...applyBudgets(data, env.budgets ?? []));
  if (errors.length > 0) return fail(errors);
  const r = validateModel(data);
  if (!r.ok) return fail(r.errors);
  const valid = r.model;
  const allocator =
    env.kind === 'local'
      ? localAllocator(valid, env)
      : env.kind === 'kubernetes'
        ? kubernetesAllocator(valid, env)
        : exampleAllocator(env);
  if ('errors' in allocator) return fail(allocator.errors);
  const placed = placeWorkloads(valid, allocator);
  placed.errors.push(...collisions([...allocator.reserved(), ...placed.listeners]));
  if (placed.errors.length > 0) return fail(placed.errors);
  const binding = bindingOf(valid, env, providers, placed.workloads, allocator);
  return { ok: true, model: Object.assign(valid, { binding }) as BoundModel, errors: [] };
}

/** The binding of a validated, patched model. */
function bindingOf(
  model: ValidModel,
  env: Environment,
  extras: LocalProviderExtras,
  workloads: Record<string, WorkloadBinding>,
  allocator: Allocator,
): Binding {
  const edge = Object.keys(model.workloads)
    .filter((w) => model.workloads[w]?.edge)
    .sort()[0];
  const services: Binding['dataServices'] = {};
  for (const [svc, endpoint] of Object.entries(allocator.dataServices()))
    services[svc as DataService] = {
      endpoint,
      spiffeId: dataServiceSpiffeId(model, svc as DataService),
    };
  return {
    environment: env.kind,
    identityProviders: Object.fromEntries(
      Object.entries(model.identityProviders).map(([name, p]) => [
        name,
        { issuer: p.issuer, jwksUri: p.jwksUri, ...extras[name] },
      ]),
    ),
    routes: Object.fromEntries(
      Object.entries(model.routes).map(([name, r]) => [name, { hosts: [...r.hosts] }]),
    ),
    ...(edge !== undefined
      ? {
          edge: {
            workload: edge,
            namespace: namespaceOf(model, edge),
            serviceAccount: model.workloads[edge]?.serviceAccount ?? edge,
            spiffeId: spiffeId(model, edge),
            ...optional('listen', allocator.edgeListen?.(edge)),
          },
        }
      : {}),
    workloads,
    ...optional('metrics', metricsBinding(model, allocator)),
    ...optional('tracing', tracingBinding(model, allocator)),
    dataServices: services,
  };
}

/** The scraper's identity, and where the environment runs it (if it does). */
function metricsBinding(model: ValidModel, allocator: Allocator): Binding['metrics'] {
  const id = scraperSpiffeId(model);
  if (id === undefined) return undefined;
  const s = allocator.scraper?.();
  return { spiffeId: id, ...(s ? { svid: s.svid, listen: s.listen } : {}) };
}

/** The trace collector's identity, and where the environment runs the pipeline (if it does). */
function tracingBinding(model: ValidModel, allocator: Allocator): Binding['tracing'] {
  const id = collectorSpiffeId(model);
  if (id === undefined || model.tracing === undefined) return undefined;
  const t = allocator.tracing?.();
  const ns = model.tracing.collector.namespace ?? model.namespace;
  return {
    spiffeId: id,
    sampling: model.tracing.sampling,
    ...(t
      ? {
          collector: t.collector,
          jaeger: {
            ...t.jaeger,
            spiffeId: `spiffe://${model.trustDomain}/ns/${ns}/sa/${t.jaeger.serviceAccount}`,
          },
        }
      : {}),
  };
}

/** Collects the workloads' bindings, every listener handed out (for the collision check), errors. */
class Placement {
  readonly workloads: Record<string, WorkloadBinding> = {};
  readonly listeners: Listener[] = [];
  readonly errors: PolicyError[] = [];

  private readonly allocator: Allocator;

  constructor(allocator: Allocator) {
    this.allocator = allocator;
  }

  /** Records `endpoint` as a listener of `w` (checked to be a TCP port), and returns it. */
  listen(
    w: WorkloadSlot,
    role: ListenerRole,
    path: string,
    what: string,
    endpoint: Endpoint | undefined,
  ): Endpoint | undefined {
    if (endpoint === undefined) return undefined;
    if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65_535)
      this.errors.push({ path, reason: `${what}: ${endpoint.port} is not a TCP port` });
    else this.listeners.push({ network: this.allocator.network(w, role), endpoint, path, what });
    return endpoint;
  }

  /** `f()`, or undefined with its error recorded when the environment cannot place something. */
  attempt<T>(f: () => T): T | undefined {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof AllocationError)) throw err;
      this.errors.push({ path: err.path, reason: err.reason });
      return undefined;
    }
  }
}

const optional = <K extends string, V>(k: K, v: V | undefined) =>
  (v === undefined ? {} : { [k]: v }) as Partial<Record<K, V>>;

/** Every workload's endpoints: inbound first (peers dial those), then app, admin and egress. */
function placeWorkloads(model: ValidModel, allocator: Allocator): Placement {
  const out = new Placement(allocator);
  const sorted = Object.keys(model.workloads).sort();
  const slots: WorkloadSlot[] = Object.entries(model.workloads).map(([name, spec], declared) => ({
    name,
    spec,
    sorted: sorted.indexOf(name),
    declared,
  }));
  for (const w of slots) {
    const inbound: Record<string, Endpoint> = {};
    const app: Record<string, Endpoint> = {};
    w.spec.ports.forEach((p, k) => {
      const path = formatPath(['workloads', w.name, 'ports', k]);
      const i = out.attempt(() => allocator.inbound(w, p, k));
      const a = out.attempt(() => allocator.app(w, p, k));
      if (i) inbound[p.name] = i;
      if (a) app[p.name] = a;
      out.listen(w, 'inbound', path, `the inbound listener of ${w.name} (${p.name})`, i);
      out.listen(w, 'app', path, `the app of ${w.name} (${p.name})`, a);
    });
    const admin = out.attempt(() => allocator.admin(w));
    out.listen(w, 'admin', formatPath(['workloads', w.name]), `the admin of ${w.name}`, admin);
    const metrics =
      model.metrics !== undefined ? out.attempt(() => allocator.metrics?.(w)) : undefined;
    out.listen(
      w,
      'metrics',
      formatPath(['workloads', w.name]),
      `the metrics listener of ${w.name}`,
      metrics,
    );
    const telemetry =
      model.tracing !== undefined ? out.attempt(() => allocator.telemetryEgress?.(w)) : undefined;
    out.listen(
      w,
      'egress',
      formatPath(['workloads', w.name]),
      `the telemetry egress listener of ${w.name}`,
      telemetry,
    );
    out.workloads[w.name] = {
      spiffeId: spiffeId(model, w.name),
      edge: w.spec.edge === true,
      inbound,
      app,
      ...optional('admin', admin),
      ...optional('metrics', metrics),
      ...optional('telemetryEgress', telemetry),
      egress: {},
      peers: {},
      svid: allocator.svid(w),
      ...optional('proxyDir', allocator.proxyDir(w)),
      ...optional('hostAddress', allocator.hostAddress?.(w)),
    };
  }
  for (const w of slots) placeCalls(model, allocator, w, out);
  return out;
}

/** The egress of one workload: a route per data service and per peer, in `calls` order. */
function placeCalls(model: ValidModel, allocator: Allocator, w: WorkloadSlot, out: Placement) {
  const bound = out.workloads[w.name];
  if (!bound) return;
  let peer = 0;
  w.spec.calls.forEach((target, index) => {
    const path = formatPath(['workloads', w.name, 'calls', index]);
    if ((dataServices as readonly string[]).includes(target)) {
      const svc = target as DataService;
      const e = out.attempt(() => allocator.dataEgress(w, svc, { index, peer }));
      if (!e) return;
      out.listen(w, 'egress', path, `the egress listener of ${w.name} for ${svc}`, e.listen);
      bound.egress[svc] = { ...e, serverSpiffeId: dataServiceSpiffeId(model, svc) };
      return;
    }
    const port = peerPort(model, target);
    const upstream = port ? out.workloads[target]?.inbound[port.name] : undefined;
    const call = { index, peer: peer++ };
    if (!port || !upstream) {
      out.errors.push({ path, reason: `${target} has no inbound endpoint to call` });
      return;
    }
    const l = out.attempt(() => allocator.peerListen(w, call));
    out.listen(w, 'egress', path, `the egress listener of ${w.name} for ${target}`, l);
    bound.peers[target] = { port: port.name, upstream, ...optional('listen', l) };
  });
}

/**
 * {@link bind} for programs that stop at the first problem: the bound model, or an Error whose
 * message is `<what>:` followed by every problem, one `path: reason` per line.
 */
export function bindOrThrow(model: ValidModel, environment: Environment, what: string): BoundModel {
  const r = bind(model, environment);
  if (!r.ok) throw new Error(`${what}:\n${formatErrors(r.errors)}`);
  return r.model;
}
