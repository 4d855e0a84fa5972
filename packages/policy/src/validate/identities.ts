/** Checks of the principals: identity providers, workloads (with their ports and calls), agents. */
import { formatPath } from '../errors.ts';
import {
  collectorSpiffeId,
  dataServices,
  metricsServerSpiffeId,
  own,
  scraperSpiffeId,
  sidecarStatsPath,
  spiffeId,
} from '../identity.ts';
import { dnsLabel, hasDotSegment, pathTemplate } from '../patterns.ts';
import type { Model, Workload } from '../schema.ts';
import { checkMtls, checkScopeName, checkUrl, wildcardReason } from './common.ts';
import type { Err } from './common.ts';

const isDataService = (name: string) => (dataServices as readonly string[]).includes(name);

/** The metrics fronts whose names and SPIFFE IDs are reserved when the model has a scraper. */
const reservedFronts = {
  keycloak: "Keycloak's metrics front",
  nginx: "the ingress nginx's metrics front",
} as const;
const reservedFront = (m: Model, id: string) =>
  (Object.keys(reservedFronts) as (keyof typeof reservedFronts)[]).find(
    (f) => id === metricsServerSpiffeId(m, f),
  );

/** Names, URLs and scopes of each provider; roles name only declared scopes. */
export function checkProviders(m: Model, err: Err): void {
  for (const [name, idp] of Object.entries(m.identityProviders)) {
    const base = ['identityProviders', name];
    if (!dnsLabel.re.test(name)) err(base, dnsLabel.reason);
    checkUrl(idp.issuer, [...base, 'issuer'], err);
    checkUrl(idp.jwksUri, [...base, 'jwksUri'], err);
    idp.scopes.forEach((s, i) => checkScopeName(s, [...base, 'scopes', i], err));
    for (const [role, r] of Object.entries(idp.roles)) {
      r.scopes.forEach((s, i) => {
        if (!idp.scopes.includes(s))
          err(
            [...base, 'roles', role, 'scopes', i],
            `unknown reference: scope '${s}' is not declared in ${formatPath([...base, 'scopes'])}`,
          );
      });
    }
  }
}

/** Port numbers and port names are unique within a workload. */
function checkPorts(w: Workload, base: PropertyKey[], err: Err): void {
  const byPort = new Map<number, number>();
  const byName = new Map<string, number>();
  w.ports.forEach((p, i) => {
    const samePort = byPort.get(p.port);
    if (samePort !== undefined)
      err(
        [...base, 'ports', i, 'port'],
        `duplicate port ${p.port} (also ${formatPath([...base, 'ports', samePort])})`,
      );
    else byPort.set(p.port, i);
    const sameName = byName.get(p.name);
    if (sameName !== undefined)
      err(
        [...base, 'ports', i, 'name'],
        `duplicate port name '${p.name}' (also ${formatPath([...base, 'ports', sameName])})`,
      );
    else byName.set(p.name, i);
  });
}

/** Each callee is named once, exists, and accepts mesh traffic. */
function checkCalls(m: Model, name: string, w: Workload, base: PropertyKey[], err: Err): void {
  const seen = new Set<string>();
  w.calls.forEach((c, i) => {
    const path = [...base, 'calls', i];
    if (c.includes('*')) err(path, wildcardReason);
    else if (c === name) err(path, 'a workload does not list itself in calls');
    else if (seen.has(c)) err(path, `duplicate entry '${c}'`);
    else if (isDataService(c)) {
      /* a data service: fine */
    } else if (!own(m.workloads, c))
      err(path, `unknown reference: no workload or data service named '${c}'`);
    else if (own(m.workloads, c)?.edge)
      err(path, `'${c}' is an edge workload: it accepts no mesh traffic`);
    seen.add(c);
  });
}

/** Names, namespaces and service accounts; one SPIFFE ID per workload; ports and calls. */
export function checkWorkloads(m: Model, err: Err): void {
  const ids = new Map<string, string>();
  for (const [name, w] of Object.entries(m.workloads)) {
    const base = ['workloads', name];
    if (!dnsLabel.re.test(name)) err(base, dnsLabel.reason);
    else if (isDataService(name)) err(base, 'name is reserved for a data service');
    else if (m.metrics && Object.hasOwn(reservedFronts, name))
      err(
        base,
        `name is reserved for ${reservedFronts[name as keyof typeof reservedFronts]} (the model has a metrics scraper)`,
      );
    if (w.namespace !== undefined && !dnsLabel.re.test(w.namespace))
      err([...base, 'namespace'], dnsLabel.reason);
    if (w.serviceAccount !== undefined && !dnsLabel.re.test(w.serviceAccount))
      err([...base, 'serviceAccount'], dnsLabel.reason);
    else if (isDataService(w.serviceAccount ?? ''))
      err(
        [...base, 'serviceAccount'],
        'the SPIFFE ID of a data service cannot be a workload identity',
      );
    const id = spiffeId(m, name);
    const front = m.metrics ? reservedFront(m, id) : undefined;
    if (front !== undefined && name !== front)
      err(
        [...base, w.serviceAccount !== undefined ? 'serviceAccount' : 'namespace'],
        `SPIFFE ID ${id} is ${reservedFronts[front]}'s: a workload needs an identity of its own`,
      );
    const clash = ids.get(id);
    if (clash !== undefined)
      err(
        [...base, w.serviceAccount !== undefined ? 'serviceAccount' : 'namespace'],
        `SPIFFE ID ${id} is also used by workloads.${clash}`,
      );
    ids.set(id, name);
    checkMtls(w.mtls, [...base, 'mtls'], err);
    checkPorts(w, base, err);
    checkCalls(m, name, w, base, err);
    checkAppMetrics(m, w, base, err);
  }
  checkScraper(m, ids, err);
  checkTracing(m, ids, err);
}

/**
 * The trace collector's SPIFFE ID is its own (no workload's, no data service's, not the scraper's),
 * and the sampling rate is a fraction.
 */
function checkTracing(m: Model, ids: Map<string, string>, err: Err): void {
  const t = m.tracing;
  const id = collectorSpiffeId(m);
  if (!t || id === undefined) return;
  const at = ['tracing', 'collector'];
  const c = t.collector;
  if (c.namespace !== undefined && !dnsLabel.re.test(c.namespace))
    err([...at, 'namespace'], dnsLabel.reason);
  if (!dnsLabel.re.test(c.serviceAccount)) err([...at, 'serviceAccount'], dnsLabel.reason);
  else if (isDataService(c.serviceAccount) && (c.namespace ?? m.namespace) === m.namespace)
    err([...at, 'serviceAccount'], 'the SPIFFE ID of a data service cannot be the collector');
  const clash = ids.get(id);
  if (clash !== undefined)
    err(
      [...at, 'serviceAccount'],
      `SPIFFE ID ${id} is workloads.${clash}'s: the collector needs an identity of its own`,
    );
  if (id === scraperSpiffeId(m))
    err(
      [...at, 'serviceAccount'],
      `SPIFFE ID ${id} is the metrics scraper's: the collector needs an identity of its own`,
    );
  if (!Number.isFinite(t.sampling) || t.sampling < 0 || t.sampling > 1)
    err(['tracing', 'sampling'], `must be a number from 0 to 1, got ${t.sampling}`);
}

/** A workload's `metrics`: an http port of its own, a literal path, and a scraper to read it. */
function checkAppMetrics(m: Model, w: Workload, base: PropertyKey[], err: Err): void {
  const mx = w.metrics;
  if (!mx) return;
  const at = [...base, 'metrics'];
  if (w.edge) {
    err(at, 'an edge workload has no app to serve metrics');
    return;
  }
  if (!m.metrics) err(at, 'declare metrics.scraper: nobody may read these metrics without one');
  const port = w.ports.find((p) => p.name === mx.port);
  if (!port) err([...at, 'port'], `unknown reference: the workload has no port named '${mx.port}'`);
  else if (port.protocol !== 'http')
    err([...at, 'port'], `port '${mx.port}' is ${port.protocol}; metrics are served over http`);
  if (!pathTemplate.re.test(mx.path) || hasDotSegment(mx.path) || mx.path.includes('{'))
    err([...at, 'path'], "must be a literal path starting with '/' (no {param}, no dot segment)");
  else if (mx.path === sidecarStatsPath)
    err([...at, 'path'], `${sidecarStatsPath} is the sidecar's own statistics`);
}

/** The scraper's SPIFFE ID is its own: no workload's, no data service's. */
function checkScraper(m: Model, ids: Map<string, string>, err: Err): void {
  const s = m.metrics?.scraper;
  const id = scraperSpiffeId(m);
  if (!s || id === undefined) return;
  const at = ['metrics', 'scraper'];
  if (s.namespace !== undefined && !dnsLabel.re.test(s.namespace))
    err([...at, 'namespace'], dnsLabel.reason);
  if (!dnsLabel.re.test(s.serviceAccount)) err([...at, 'serviceAccount'], dnsLabel.reason);
  else if (isDataService(s.serviceAccount) && (s.namespace ?? m.namespace) === m.namespace)
    err([...at, 'serviceAccount'], 'the SPIFFE ID of a data service cannot be the scraper');
  else if (reservedFront(m, id) !== undefined)
    err(
      [...at, 'serviceAccount'],
      `the SPIFFE ID of ${reservedFronts[reservedFront(m, id) ?? 'keycloak']} cannot be the scraper`,
    );
  const clash = ids.get(id);
  if (clash !== undefined)
    err(
      [...at, 'serviceAccount'],
      `SPIFFE ID ${id} is workloads.${clash}'s: the scraper needs an identity of its own`,
    );
}

/** Agents name a declared provider and only scopes it declares, never a wildcard. */
export function checkAgents(m: Model, err: Err): void {
  for (const [name, a] of Object.entries(m.agents)) {
    const base = ['agents', name];
    if (!dnsLabel.re.test(name)) err(base, dnsLabel.reason);
    const idp = own(m.identityProviders, a.provider);
    if (!idp)
      err([...base, 'provider'], `unknown reference: no identity provider named '${a.provider}'`);
    a.scopes.forEach((s, i) => {
      if (s.includes('*'))
        err([...base, 'scopes', i], 'wildcard scopes are not allowed: name each scope');
      else if (idp && !idp.scopes.includes(s))
        err(
          [...base, 'scopes', i],
          `unknown reference: provider '${a.provider}' does not declare scope '${s}'`,
        );
    });
  }
}
