/**
 * Parsing and validation. `parseModel` (YAML text) and `validateModel` (plain data) never throw: they
 * return either a `ValidModel` or a non-empty list of path-qualified errors. Compilers accept only a
 * `ValidModel`, so an invalid model cannot yield an artefact.
 */
import { own } from './identity.ts';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { formatPath, rootPath } from './errors.ts';
import type { PolicyError } from './errors.ts';
import { dataServices, edgeWorkloads, spiffeId } from './identity.ts';
import { modelSchema } from './schema.ts';
import type { Model } from './schema.ts';

declare const validBrand: unique symbol;
/** A model that passed every check. Only `parseModel` and `validateModel` produce one. */
export type ValidModel = Model & { readonly [validBrand]: true };

/** The outcome of parsing or validating a model. */
export type ModelResult =
  | { ok: true; model: ValidModel; errors: [] }
  | { ok: false; model?: undefined; errors: PolicyError[] };

/**
 * Cassandra's system keyspaces (5.0; `system_cluster_metadata` arrives with 5.1/TCM). Apps never get a
 * grant on these. https://cassandra.apache.org/doc/5.0/cassandra/architecture/storage-engine.html
 */
export const cassandraSystemKeyspaces = [
  'system',
  'system_auth',
  'system_schema',
  'system_distributed',
  'system_traces',
  'system_views',
  'system_virtual_schema',
  'system_cluster_metadata',
] as const;

/** Minimum length of a PERMISSIVE justification: a sentence, not a token. */
export const minJustificationLength = 20;

const dnsLabel = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const dnsLabelReason =
  "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters";
// SPIFFE trust domain: https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain
const trustDomainRe = /^[a-z0-9._-]+$/;
// Cassandra identifiers: https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html
const cqlName = /^[a-z_][a-z0-9_]{0,47}$/;
const cqlNameReason =
  'must be a lowercase Cassandra name: a-z, 0-9 and _, not starting with a digit, at most 48 characters';
// Kafka topic and group names: legal characters [a-zA-Z0-9._-], at most 249 (kafka Topic.java).
const kafkaName = /^[A-Za-z0-9._-]{1,249}$/;
const kafkaNameReason =
  "must be a Kafka name: letters, digits, '.', '_' and '-', at most 249 characters";
const pathTemplate = /^(\/|(\/([A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+)$/;
const pathReason =
  "must be a path template starting with '/': segments of letters, digits and ._~- or a {param}";
const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);
const wildcardReason = 'wildcard principals are not allowed: name each identity';

/** Parses YAML text and validates it. Never throws. */
export function parseModel(text: string): ModelResult {
  let data: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        errors: doc.errors.map((e) => {
          const at = e.linePos?.[0];
          const where = at ? ` at line ${at.line}, column ${at.col}` : '';
          return { path: rootPath, reason: `YAML syntax error${where}: ${firstLine(e.message)}` };
        }),
      };
    }
    // maxAliasCount bounds alias expansion ("billion laughs").
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    return { ok: false, errors: [{ path: rootPath, reason: `YAML error: ${messageOf(err)}` }] };
  }
  return validateModel(data);
}

/** Validates plain data (e.g. parsed JSON or YAML) as a model. Never throws. */
export function validateModel(data: unknown): ModelResult {
  try {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      return {
        ok: false,
        errors: [{ path: rootPath, reason: 'the model must be a mapping (an object)' }],
      };
    }
    const parsed = modelSchema.safeParse(data, { reportInput: true });
    if (!parsed.success) return { ok: false, errors: parsed.error.issues.flatMap(issueToErrors) };
    const errors = checkModel(parsed.data);
    if (errors.length > 0) return { ok: false, errors };
    return { ok: true, model: parsed.data as ValidModel, errors: [] };
  } catch (err) {
    // A safety net: a bug in a check must still come back as an error, never as an exception.
    return { ok: false, errors: [{ path: rootPath, reason: `internal error: ${messageOf(err)}` }] };
  }
}

/** The message without the snippet and position that `prettyErrors` appends. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function issueToErrors(issue: z.core.$ZodIssue): PolicyError[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({
        path: formatPath([...issue.path, k]),
        reason: 'unknown field',
      }));
    case 'invalid_type':
      if (issue.input === undefined) return [{ path, reason: 'required field is missing' }];
      return [
        { path, reason: `expected ${expectedName(issue.expected)}, got ${describe(issue.input)}` },
      ];
    case 'too_small':
      if (issue.origin === 'array')
        return [{ path, reason: `must have at least ${String(issue.minimum)} item(s)` }];
      if (issue.origin === 'string') return [{ path, reason: 'must not be empty' }];
      return [
        {
          path,
          reason: `must be ${issue.inclusive ? 'at least' : 'greater than'} ${String(issue.minimum)}`,
        },
      ];
    case 'too_big':
      return [
        {
          path,
          reason: `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`,
        },
      ];
    case 'invalid_value':
      return [
        {
          path,
          reason: `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
        },
      ];
    case 'invalid_format':
      return [
        {
          path,
          reason: issue.format === 'url' ? 'must be a URL' : `must be a valid ${issue.format}`,
        },
      ];
    default:
      return [{ path, reason: issue.message }];
  }
}

function expectedName(expected: string): string {
  if (expected === 'object' || expected === 'record') return 'a mapping';
  if (expected === 'array') return 'a list';
  if (expected === 'int') return 'an integer';
  return `a ${expected}`;
}

/** The cross-field rules. Each pushes an error with the path of the field at fault. */
function checkModel(m: Model): PolicyError[] {
  const errors: PolicyError[] = [];
  const err = (path: PropertyKey[], reason: string) =>
    errors.push({ path: formatPath(path), reason });

  if (!trustDomainRe.test(m.trustDomain))
    err(
      ['trustDomain'],
      "must be a SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_', no scheme",
    );
  if (!dnsLabel.test(m.namespace)) err(['namespace'], dnsLabelReason);
  checkMtls(m.mtls, ['mtls'], err);

  if (Object.keys(m.regions).length === 0) err(['regions'], 'declare at least one region');
  for (const r of Object.keys(m.regions))
    if (!dnsLabel.test(r)) err(['regions', r], dnsLabelReason);

  checkProviders(m, err);
  checkWorkloads(m, err);
  checkRoutes(m, err);
  checkCassandra(m, err);
  checkKafka(m, err);
  checkAgents(m, err);

  const mesh = m.budgets?.mesh;
  if (mesh && mesh.p50Ms > mesh.p99Ms) err(['budgets', 'mesh', 'p50Ms'], 'p50 must not exceed p99');
  return errors;
}

type Err = (path: PropertyKey[], reason: string) => void;

function checkMtls(mtls: Model['mtls'] | undefined, path: PropertyKey[], err: Err) {
  if (mtls?.mode !== 'PERMISSIVE') return;
  if ((mtls.justification ?? '').trim().length < minJustificationLength)
    err(
      [...path, 'justification'],
      `PERMISSIVE mTLS needs a written justification (at least ${minJustificationLength} characters)`,
    );
}

function checkUrl(url: string, path: PropertyKey[], err: Err) {
  const u = new URL(url);
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && loopbackHosts.has(u.hostname)) return;
  err(path, 'must use https (http is allowed only for a loopback host)');
}

function checkScopeName(scope: string, path: PropertyKey[], err: Err) {
  if (/\s/.test(scope))
    err(path, 'a scope must not contain whitespace (scopes are space-separated in tokens)');
  else if (scope.includes('*')) err(path, 'wildcard scopes are not allowed: name each scope');
}

function checkProviders(m: Model, err: Err) {
  for (const [name, idp] of Object.entries(m.identityProviders)) {
    const base = ['identityProviders', name];
    if (!dnsLabel.test(name)) err(base, dnsLabelReason);
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

function checkWorkloads(m: Model, err: Err) {
  const ids = new Map<string, string>();
  for (const [name, w] of Object.entries(m.workloads)) {
    const base = ['workloads', name];
    if (!dnsLabel.test(name)) err(base, dnsLabelReason);
    else if ((dataServices as readonly string[]).includes(name))
      err(base, 'name is reserved for a data service');
    if (w.namespace !== undefined && !dnsLabel.test(w.namespace))
      err([...base, 'namespace'], dnsLabelReason);
    if (w.serviceAccount !== undefined && !dnsLabel.test(w.serviceAccount))
      err([...base, 'serviceAccount'], dnsLabelReason);
    else if ((dataServices as readonly string[]).includes(w.serviceAccount ?? ''))
      err(
        [...base, 'serviceAccount'],
        'the SPIFFE ID of a data service cannot be a workload identity',
      );
    const id = spiffeId(m, name);
    const clash = ids.get(id);
    if (clash !== undefined)
      err(
        [...base, w.serviceAccount !== undefined ? 'serviceAccount' : 'namespace'],
        `SPIFFE ID ${id} is also used by workloads.${clash}`,
      );
    ids.set(id, name);
    checkMtls(w.mtls, [...base, 'mtls'], err);

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

    const seen = new Set<string>();
    w.calls.forEach((c, i) => {
      const path = [...base, 'calls', i];
      if (c.includes('*')) err(path, wildcardReason);
      else if (c === name) err(path, 'a workload does not list itself in calls');
      else if (seen.has(c)) err(path, `duplicate entry '${c}'`);
      else if ((dataServices as readonly string[]).includes(c)) {
        /* a data service: fine */
      } else if (!own(m.workloads, c))
        err(path, `unknown reference: no workload or data service named '${c}'`);
      else if (own(m.workloads, c)?.edge)
        err(path, `'${c}' is an edge workload: it accepts no mesh traffic`);
      seen.add(c);
    });
  }
}

function checkRoutes(m: Model, err: Err) {
  const edges = edgeWorkloads(m);
  const seen = new Map<string, string>();
  for (const [name, r] of Object.entries(m.routes)) {
    const base = ['routes', name];
    if (!dnsLabel.test(name)) err(base, dnsLabelReason);
    r.hosts.forEach((h, i) => {
      if (h.includes('*'))
        err([...base, 'hosts', i], 'wildcard hosts are not allowed: name each host');
    });
    if (!pathTemplate.test(r.path) || r.path.split('/').some((s) => s === '.' || s === '..'))
      err([...base, 'path'], pathReason);

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
      if (!edges.some((e) => own(m.workloads, e)?.calls.includes(r.backend)))
        err(
          [...base, 'backend'],
          `no edge workload calls '${r.backend}', so the route is unreachable`,
        );
    }

    // The edge has one upstream per backend, so all routes to a backend use one port.
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
    const key = `${r.backend}|${r.port}|${r.method}|${r.path}`;
    const dup = seen.get(key);
    if (dup !== undefined) err(base, `same backend, port, method and path as routes.${dup}`);
    else seen.set(key, name);

    if (!r.auth) {
      err(
        [...base, 'auth'],
        'route has no authentication: every route names a provider and required scopes or claims',
      );
    } else {
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
      for (const [claim, values] of Object.entries(r.auth.claims)) {
        if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(claim))
          err(
            [...base, 'auth', 'claims', claim],
            'a claim name is letters, digits, _, - and . (for nesting)',
          );
        if (idp && claim === idp.scopeClaim)
          err([...base, 'auth', 'claims', claim], `use auth.scopes for the scope claim '${claim}'`);
        values.forEach((v, i) => {
          if (v.includes('*'))
            err([...base, 'auth', 'claims', claim, i], 'wildcard claim values are not allowed');
        });
      }
    }

    // Envoy's token bucket refills requestsPerSecond once a second, capped at burst (max_tokens).
    if (r.rateLimit && r.rateLimit.burst < r.rateLimit.requestsPerSecond)
      err(
        [...base, 'rateLimit', 'burst'],
        'burst must be at least requestsPerSecond (the bucket refills once a second)',
      );
    if (r.budget?.p50Ms !== undefined && r.budget.p50Ms > r.budget.p99Ms)
      err([...base, 'budget', 'p50Ms'], 'p50 must not exceed p99');
  }
}

function checkIdentity(
  m: Model,
  identity: string,
  service: 'cassandra' | 'kafka',
  path: PropertyKey[],
  err: Err,
) {
  if (identity.includes('*')) err(path, wildcardReason);
  else if (!own(m.workloads, identity))
    err(path, `unknown reference: no workload named '${identity}'`);
  else if (!own(m.workloads, identity)?.calls.includes(service))
    err(path, `workloads.${identity} does not list '${service}' in calls`);
}

function checkCassandra(m: Model, err: Err) {
  const system = cassandraSystemKeyspaces as readonly string[];
  for (const [ks, def] of Object.entries(m.cassandra.keyspaces)) {
    const base = ['cassandra', 'keyspaces', ks];
    if (system.includes(ks.toLowerCase()))
      err(base, `'${ks}' is a Cassandra system keyspace and cannot be declared`);
    else if (!cqlName.test(ks)) err(base, cqlNameReason);
    def.tables.forEach((t, i) => {
      if (!cqlName.test(t)) err([...base, 'tables', i], cqlNameReason);
    });
  }
  m.cassandra.grants.forEach((g, i) => {
    const base = ['cassandra', 'grants', i];
    checkIdentity(m, g.identity, 'cassandra', [...base, 'identity'], err);
    if (system.includes(g.keyspace.toLowerCase()))
      err(
        [...base, 'keyspace'],
        `grants on Cassandra system keyspace '${g.keyspace}' are not allowed`,
      );
    else if (g.keyspace.includes('*'))
      err([...base, 'keyspace'], 'wildcard keyspaces are not allowed: name each keyspace');
    else {
      const ks = own(m.cassandra.keyspaces, g.keyspace);
      if (!ks)
        err(
          [...base, 'keyspace'],
          `unknown reference: keyspace '${g.keyspace}' is not declared in cassandra.keyspaces`,
        );
      else if (g.table !== undefined && !ks.tables.includes(g.table))
        err(
          [...base, 'table'],
          `unknown reference: table '${g.table}' is not declared in cassandra.keyspaces.${g.keyspace}.tables`,
        );
    }
    if (g.table !== undefined)
      g.permissions.forEach((p, j) => {
        // CQL: CREATE applies to ALL KEYSPACES and KEYSPACE only (it creates tables in the keyspace).
        if (p === 'CREATE')
          err([...base, 'permissions', j], 'CREATE applies to a keyspace, not a table');
      });
  });
}

function checkKafka(m: Model, err: Err) {
  for (const [topic, t] of Object.entries(m.kafka.topics)) {
    const base = ['kafka', 'topics', topic];
    if (!kafkaName.test(topic) || topic === '.' || topic === '..') err(base, kafkaNameReason);
    t.producers.forEach((p, i) => checkIdentity(m, p, 'kafka', [...base, 'producers', i], err));
    t.consumers.forEach((c, i) => {
      checkIdentity(m, c.identity, 'kafka', [...base, 'consumers', i, 'identity'], err);
      if (c.group.includes('*'))
        err([...base, 'consumers', i, 'group'], 'wildcard groups are not allowed: name each group');
      else if (!kafkaName.test(c.group)) err([...base, 'consumers', i, 'group'], kafkaNameReason);
    });
  }
}

function checkAgents(m: Model, err: Err) {
  for (const [name, a] of Object.entries(m.agents)) {
    const base = ['agents', name];
    if (!dnsLabel.test(name)) err(base, dnsLabelReason);
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
