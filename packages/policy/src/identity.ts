/** Identity helpers shared by validation, the compilers and the oracle. Pure functions of the model. */
import type { Model, Route } from './schema.ts';

/** An own property of a record (never one inherited from Object.prototype, e.g. `__proto__`). */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Names in `calls` that refer to data services rather than workloads. */
export const dataServices = ['cassandra', 'kafka'] as const;
/** A data service a workload can call. */
export type DataService = (typeof dataServices)[number];

/** The SPIFFE ID of a workload: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export function spiffeId(model: Model, workload: string): string {
  const w = own(model.workloads, workload);
  const ns = w?.namespace ?? model.namespace;
  const sa = w?.serviceAccount ?? workload;
  return `spiffe://${model.trustDomain}/ns/${ns}/sa/${sa}`;
}

/** The SPIFFE ID a data service's servers present (`.../sa/cassandra`, `.../sa/kafka`). */
export function dataServiceSpiffeId(model: Model, service: DataService): string {
  return `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/${service}`;
}

/**
 * The servers whose metrics sit behind an mTLS metrics front (ADR 0020): the data services' JMX
 * exporters and the identity provider's Keycloak management interface. Each front presents
 * `.../sa/<server>` and the DNS name `<server>.<namespace>.svc`.
 */
export const metricsServers = ['cassandra', 'kafka', 'keycloak', 'nginx'] as const;
/** A server with a metrics front. */
export type MetricsServer = (typeof metricsServers)[number];

/** The one path a server's metrics front admits (the JMX exporter's and Keycloak's metrics). */
export const serverMetricsPath = '/metrics';

/** The SPIFFE ID a server's metrics front presents (`.../sa/cassandra`, `.../sa/keycloak`). */
export function metricsServerSpiffeId(model: Model, server: MetricsServer): string {
  return `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/${server}`;
}

/** The workload whose SPIFFE ID is `id`, if any. */
export function workloadBySpiffeId(model: Model, id: string): string | undefined {
  return Object.keys(model.workloads).find((w) => spiffeId(model, w) === id);
}

/** The namespace a workload runs in. */
export function namespaceOf(model: Model, workload: string): string {
  return own(model.workloads, workload)?.namespace ?? model.namespace;
}

/** Workloads whose `calls` name `workload`, sorted by name. */
export function callersOf(model: Model, workload: string): string[] {
  return Object.entries(model.workloads)
    .filter(([, w]) => w.calls.includes(workload))
    .map(([name]) => name)
    .sort();
}

/** Routes served by `workload` (on `port`, when given), as [name, route] pairs in model order. */
export function routesOf(model: Model, workload: string, port?: string): [string, Route][] {
  return Object.entries(model.routes).filter(
    ([, r]) => r.backend === workload && (port === undefined || r.port === port),
  );
}

/** Identity providers named by the routes a workload serves, sorted. */
export function workloadProviders(model: Model, workload: string): string[] {
  const names = routesOf(model, workload).map(([, r]) => r.auth?.provider);
  return [...new Set(names.filter((n): n is string => n !== undefined))].sort();
}

/** Names of the edge workloads (the ingress sidecars). */
export function edgeWorkloads(model: Model): string[] {
  return Object.entries(model.workloads)
    .filter(([, w]) => w.edge)
    .map(([name]) => name);
}

/** Every scope a principal holding `roles` at provider `provider` may carry. */
export function scopesForRoles(model: Model, provider: string, roles: readonly string[]): string[] {
  const idp = own(model.identityProviders, provider);
  if (!idp) return [];
  const out = new Set<string>();
  for (const r of roles) for (const s of own(idp.roles, r)?.scopes ?? []) out.add(s);
  return [...out].sort();
}

/**
 * Compiles a route path template (`/orders/{id}`) to an anchored regular expression (RE2-compatible, so
 * Envoy's `safe_regex` accepts it). A `{param}` matches one non-empty segment without `/`.
 */
export function pathTemplateRegex(template: string): string {
  const parts = template
    .split('/')
    .map((seg) =>
      /^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(seg)
        ? '[^/]+'
        : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    );
  return `^${parts.join('/')}$`;
}

/** Whether a concrete request path matches a route path template. */
export function matchesPathTemplate(template: string, path: string): boolean {
  return new RegExp(pathTemplateRegex(template)).test(path);
}

/**
 * The path of a sidecar's Envoy statistics in Prometheus text: Envoy's admin `/stats/prometheus`,
 * which the sidecar's metrics listener routes to its admin interface.
 */
export const sidecarStatsPath = '/stats/prometheus';

/** The metrics scraper's SPIFFE ID, or undefined when the model has no `metrics` block. */
export function scraperSpiffeId(model: Model): string | undefined {
  const s = model.metrics?.scraper;
  if (!s) return undefined;
  return `spiffe://${model.trustDomain}/ns/${s.namespace ?? model.namespace}/sa/${s.serviceAccount}`;
}

/** The trace collector's SPIFFE ID, or undefined when the model has no `tracing` block. */
export function collectorSpiffeId(model: Model): string | undefined {
  const c = model.tracing?.collector;
  if (!c) return undefined;
  return `spiffe://${model.trustDomain}/ns/${c.namespace ?? model.namespace}/sa/${c.serviceAccount}`;
}

/** The only path the collector admits: OTLP/HTTP's trace export. */
export const otlpTracesPath = '/v1/traces';

/**
 * The DNS name a workload's SVID carries beside its SPIFFE ID, `<service-account>.<namespace>.svc`
 * (Kubernetes' Service name form): Prometheus checks a target's certificate by DNS name
 * (`tls_config.server_name`), as it has no SPIFFE ID matcher.
 */
export function metricsServerName(model: Model, workload: string): string {
  const w = own(model.workloads, workload);
  return `${w?.serviceAccount ?? workload}.${w?.namespace ?? model.namespace}.svc`;
}
