/** Checks of the edge routes: names, hosts and paths, the backend and its port, auth, limits. */
import { edgeWorkloads, own } from '../identity.ts';
import { claimName, dnsLabel, hasDotSegment, pathTemplate } from '../patterns.ts';
import type { Model, Route } from '../schema.ts';
import type { Err } from './common.ts';

/** The backend is a mesh workload with an http port of that name, called by an edge workload. */
function checkBackend(m: Model, r: Route, base: PropertyKey[], err: Err): void {
  const backend = own(m.workloads, r.backend);
  if (!backend) err([...base, 'backend'], `unknown reference: no workload named '${r.backend}'`);
  else if (backend.edge)
    err([...base, 'backend'], `'${r.backend}' is an edge workload and cannot serve routes`);
  else {
    const port = backend.ports.find((p) => p.name === r.port);
    if (!port)
      err(
        [...base, 'port'],
        `unknown reference: workloads.${r.backend} has no port named '${r.port}'`,
      );
    else if (port.protocol !== 'http')
      err(
        [...base, 'port'],
        `port '${r.port}' of workloads.${r.backend} is ${port.protocol}; routes need an http port`,
      );
    if (!edgeWorkloads(m).some((e) => own(m.workloads, e)?.calls.includes(r.backend)))
      err(
        [...base, 'backend'],
        `no edge workload calls '${r.backend}', so the route is unreachable`,
      );
  }
}

/** The edge has one upstream per backend, so all routes to a backend use one port. */
function checkOnePort(m: Model, r: Route, base: PropertyKey[], err: Err): void {
  const backend = own(m.workloads, r.backend);
  const other = Object.entries(m.routes).find(
    ([, o]) =>
      o.backend === r.backend &&
      o.port !== r.port &&
      backend?.ports.some((p) => p.name === o.port) === true,
  );
  if (other && backend?.ports.some((p) => p.name === r.port) === true)
    err(
      [...base, 'port'],
      `routes.${other[0]} reaches ${r.backend} on port '${other[1].port}': the edge has one upstream per backend`,
    );
}

/** Claims the token must carry: valid names, not the scope claim, no wildcard values. */
function checkClaims(
  auth: NonNullable<Route['auth']>,
  scopeClaim: string | undefined,
  base: PropertyKey[],
  err: Err,
): void {
  for (const [claim, values] of Object.entries(auth.claims)) {
    if (!claimName.re.test(claim)) err([...base, 'auth', 'claims', claim], claimName.reason);
    if (claim === scopeClaim)
      err([...base, 'auth', 'claims', claim], `use auth.scopes for the scope claim '${claim}'`);
    values.forEach((v, i) => {
      if (v.includes('*'))
        err([...base, 'auth', 'claims', claim, i], 'wildcard claim values are not allowed');
    });
  }
}

/** Every route names a declared provider and at least one of its scopes or a claim. */
function checkAuth(m: Model, r: Route, base: PropertyKey[], err: Err): void {
  if (!r.auth) {
    err(
      [...base, 'auth'],
      'route has no authentication: every route names a provider and required scopes or claims',
    );
    return;
  }
  const idp = own(m.identityProviders, r.auth.provider);
  if (!idp)
    err(
      [...base, 'auth', 'provider'],
      `unknown reference: no identity provider named '${r.auth.provider}'`,
    );
  if (r.auth.scopes.length === 0 && Object.keys(r.auth.claims).length === 0)
    err(
      [...base, 'auth'],
      'route requires no scope or claim, so any valid token would pass: name at least one',
    );
  r.auth.scopes.forEach((s, i) => {
    if (idp && !idp.scopes.includes(s))
      err(
        [...base, 'auth', 'scopes', i],
        `unknown reference: provider '${r.auth?.provider}' does not declare scope '${s}'`,
      );
  });
  checkClaims(r.auth, idp?.scopeClaim, base, err);
}

/** Rate limit and latency budget are consistent. */
function checkLimits(r: Route, base: PropertyKey[], err: Err): void {
  // Envoy's token bucket refills requestsPerSecond once a second, capped at burst (max_tokens).
  if (r.rateLimit && r.rateLimit.burst < r.rateLimit.requestsPerSecond)
    err(
      [...base, 'rateLimit', 'burst'],
      'burst must be at least requestsPerSecond (the bucket refills once a second)',
    );
  if (r.budget?.p50Ms !== undefined && r.budget.p50Ms > r.budget.p99Ms)
    err([...base, 'budget', 'p50Ms'], 'p50 must not exceed p99');
}

/** Every route, and no two routes with the same backend, port, method and path. */
export function checkRoutes(m: Model, err: Err): void {
  const seen = new Map<string, string>();
  for (const [name, r] of Object.entries(m.routes)) {
    const base = ['routes', name];
    if (!dnsLabel.re.test(name)) err(base, dnsLabel.reason);
    r.hosts.forEach((h, i) => {
      if (h.includes('*'))
        err([...base, 'hosts', i], 'wildcard hosts are not allowed: name each host');
    });
    if (!pathTemplate.re.test(r.path) || hasDotSegment(r.path))
      err([...base, 'path'], pathTemplate.reason);
    checkBackend(m, r, base, err);
    checkOnePort(m, r, base, err);
    const key = `${r.backend}|${r.port}|${r.method}|${r.path}`;
    const dup = seen.get(key);
    if (dup !== undefined) err(base, `same backend, port, method and path as routes.${dup}`);
    else seen.set(key, name);
    checkAuth(m, r, base, err);
    checkLimits(r, base, err);
  }
}
