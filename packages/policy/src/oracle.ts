/**
 * The oracle: the one decision function. It reads the model directly (no compiled artefact) and says
 * whether a request is allowed. Property tests check that every compiled target decides the same.
 *
 * The rules, in words:
 * - A workload's inbound port accepts only a peer with a trusted mesh certificate whose SPIFFE ID is a
 *   workload that lists the destination in `calls` (mesh STRICT; PERMISSIVE admits plaintext at the
 *   transport, but plaintext has no identity and so is never authorized).
 * - On a workload that serves routes, a token that is present must be valid for one of the workload's
 *   providers, on every http port (a missing token is fine on ports without routes).
 * - On an http port that serves routes, the request must match a route (method and path template), and
 *   carry a token that the route's provider issued (exact `iss`, one of the audiences, an `exp` not past and
 *   an `nbf` not ahead (both with Envoy's 60 s clock skew), a verified signature, never `alg: none`) with every required scope
 *   and claim. On a port without routes, the peer decides alone.
 * - Kafka: producers may WRITE (and so DESCRIBE) their topics, consumers may READ (and DESCRIBE) their
 *   topics and READ (and DESCRIBE) their groups; nothing else.
 * - Metrics: only the scraper (`metrics.scraper`, over mTLS) may GET a sidecar's Envoy statistics
 *   (`/stats/prometheus`) and the app's metrics path where the workload declares one; nothing else on
 *   that listener, and the scraper nothing anywhere else (it is no workload, so no `calls`). On a
 *   server's metrics front (Cassandra, Kafka, Keycloak), the scraper may GET `/metrics` only.
 * - Traces: every workload (a trusted mesh certificate whose SPIFFE ID is a workload's) may
 *   `POST /v1/traces` to the collector (`tracing.collector`); nothing else there, and nobody else
 *   (the collector and the scraper are no workloads). Without a `tracing` block, nobody.
 * - Cassandra: a permission on a table is held if granted on the table or on its keyspace; a keyspace
 *   permission only if granted on the keyspace. System keyspaces never.
 */
import { own } from './identity.ts';
import {
  callersOf,
  collectorSpiffeId,
  edgeWorkloads,
  otlpTracesPath,
  matchesPathTemplate,
  routesOf,
  metricsServers,
  scraperSpiffeId,
  serverMetricsPath,
  sidecarStatsPath,
  spiffeId,
  workloadBySpiffeId,
  workloadProviders,
} from './identity.ts';
import { claimAt, claimValues, jwtClockSkewSeconds } from './request.ts';
import type {
  AccessRequest,
  CqlRequest,
  Decision,
  EdgeRequest,
  HttpRequest,
  KafkaRequest,
  Peer,
  ScrapeRequest,
  TcpRequest,
  Token,
  TraceExportRequest,
} from './request.ts';
import type { IdentityProvider, Model, RouteAuth } from './schema.ts';
import { cassandraSystemKeyspaces } from './validate.ts';

const allow = (reason: string): Decision => ({ allowed: true, reason });
const deny = (reason: string): Decision => ({ allowed: false, reason });

/** Decides any request against the model. */
export function allowed(model: Model, request: AccessRequest): Decision {
  switch (request.kind) {
    case 'http':
      return decideHttp(model, request);
    case 'tcp':
      return decideTcp(model, request);
    case 'edge':
      return decideEdge(model, request);
    case 'kafka':
      return decideKafka(model, request);
    case 'cql':
      return decideCql(model, request);
    case 'scrape':
      return decideScrape(model, request);
    case 'trace-export':
      return decideTraceExport(model, request);
  }
}

function decideTraceExport(model: Model, r: TraceExportRequest): Decision {
  if (collectorSpiffeId(model) === undefined)
    return deny('the model declares no tracing collector');
  if (r.peer.kind === 'none') return deny('no client certificate (mTLS required)');
  if (!r.peer.trusted) return deny('client certificate not issued by the mesh CA');
  const from = workloadBySpiffeId(model, r.peer.spiffeId);
  if (from === undefined) return deny(`${r.peer.spiffeId} is no workload of the model`);
  if (r.method !== 'POST') return deny(`spans are exported with POST, not ${r.method}`);
  if (r.path !== otlpTracesPath) return deny(`${r.path} is not ${otlpTracesPath}`);
  return allow(`workloads.${from} exports spans to the collector`);
}

function decideScrape(model: Model, r: ScrapeRequest): Decision {
  const scraper = scraperSpiffeId(model);
  if (scraper === undefined) return deny('the model has no metrics scraper');
  const w = own(model.workloads, r.to);
  const server = (metricsServers as readonly string[]).includes(r.to);
  if (!w && !server) return deny(`${r.to} is not a workload or a server with metrics`);
  if (r.peer.kind === 'none') return deny('no client certificate (mTLS required)');
  if (!r.peer.trusted) return deny('client certificate not issued by the mesh CA');
  if (r.peer.spiffeId !== scraper) return deny(`${r.peer.spiffeId} is not the metrics scraper`);
  if (r.method !== 'GET') return deny(`metrics are read with GET, not ${r.method}`);
  if (!w)
    return r.path === serverMetricsPath
      ? allow(`the scraper reads ${r.to}'s metrics through its metrics front`)
      : deny(`${r.path} is not ${r.to}'s metrics path (${serverMetricsPath})`);
  if (r.path === sidecarStatsPath) return allow(`the scraper reads ${r.to}'s sidecar statistics`);
  if (w.metrics !== undefined && r.path === w.metrics.path)
    return allow(`the scraper reads workloads.${r.to}.metrics`);
  return deny(`${r.path} is no metrics path of ${r.to}`);
}

/** Who the peer is, if it may call `to` at all. */
function checkPeer(model: Model, to: string, peer: Peer): Decision {
  if (peer.kind === 'none') return deny('no client certificate (mTLS required)');
  if (!peer.trusted) return deny('client certificate not issued by the mesh CA');
  const caller = workloadBySpiffeId(model, peer.spiffeId);
  if (caller === undefined) return deny(`${peer.spiffeId} is not a workload of this model`);
  if (!callersOf(model, to).includes(caller))
    return deny(`workloads.${caller} does not call ${to}`);
  return allow(`workloads.${caller} calls ${to}`);
}

function destinationPort(model: Model, to: string, port: string) {
  const w = own(model.workloads, to);
  if (!w) return undefined;
  if (w.edge) return undefined;
  return w.ports.find((p) => p.name === port);
}

function decideHttp(model: Model, r: HttpRequest): Decision {
  const port = destinationPort(model, r.to, r.port);
  if (!port) return deny(`no mesh port '${r.port}' on ${r.to}`);
  if (port.protocol === 'tcp') return deny(`port '${r.port}' of ${r.to} is tcp`);
  const peer = checkPeer(model, r.to, r.peer);
  if (!peer.allowed) return peer;
  // A workload that serves routes rejects an invalid token on every http port (a missing one is
  // fine where no route applies): Istio's RequestAuthentication is per workload, not per port.
  const providers = workloadProviders(model, r.to);
  const token = r.token;
  if (providers.length > 0 && token !== undefined) {
    const valid = providers.some((p) => {
      const idp = own(model.identityProviders, p);
      return idp !== undefined && tokenValidFor(idp, token, r.now).allowed;
    });
    if (!valid) return deny(`token not valid for any provider of ${r.to}`);
  }
  const routes = routesOf(model, r.to, r.port);
  if (routes.length === 0) return allow(`${peer.reason}; port '${r.port}' has no routes`);
  let why = `no route of ${r.to} matches ${r.method} ${r.path}`;
  for (const [name, route] of routes) {
    if (route.method !== r.method || !matchesPathTemplate(route.path, r.path)) continue;
    const auth = checkAuth(model, route.auth, r.token, r.now);
    if (auth.allowed) return allow(`routes.${name}: ${auth.reason}`);
    why = `routes.${name}: ${auth.reason}`;
  }
  return deny(why);
}

function decideTcp(model: Model, r: TcpRequest): Decision {
  const port = destinationPort(model, r.to, r.port);
  if (!port) return deny(`no mesh port '${r.port}' on ${r.to}`);
  if (port.protocol !== 'tcp') return deny(`port '${r.port}' of ${r.to} is ${port.protocol}`);
  return checkPeer(model, r.to, r.peer);
}

function decideEdge(model: Model, r: EdgeRequest): Decision {
  // The edge routes by host, method and path, first match in model order (as the edge sidecar's
  // route table does); the backend's sidecar then decides for the edge identity.
  for (const [name, route] of Object.entries(model.routes)) {
    if (!route.hosts.includes(r.host) || route.method !== r.method) continue;
    if (!matchesPathTemplate(route.path, r.path)) continue;
    const via = edgeWorkloads(model).find((e) =>
      own(model.workloads, e)?.calls.includes(route.backend),
    );
    if (via === undefined) return deny(`routes.${name}: no edge workload calls ${route.backend}`);
    const d = decideHttp(model, {
      kind: 'http',
      to: route.backend,
      port: route.port,
      peer: { kind: 'cert', spiffeId: spiffeId(model, via), trusted: true },
      method: r.method,
      path: r.path,
      ...(r.token ? { token: r.token } : {}),
      now: r.now,
    });
    return { allowed: d.allowed, reason: `routes.${name} via ${via}: ${d.reason}` };
  }
  return deny(`no route for ${r.method} ${r.host}${r.path}`);
}

/** Whether a token is valid for a provider (everything but scopes and claims). */
export function tokenValidFor(idp: IdentityProvider, token: Token, now: number): Decision {
  if (token.alg.toLowerCase() === 'none') return deny('alg none is never accepted');
  if (!token.signatureValid) return deny('token signature does not verify');
  const c = token.claims;
  if (c['iss'] !== idp.issuer) return deny('token issuer is not the route provider');
  const aud = c['aud'];
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!auds.some((a) => typeof a === 'string' && idp.audiences.includes(a)))
    return deny('token audience not accepted');
  const exp = c['exp'];
  if (typeof exp !== 'number') return deny('token has no exp');
  if (now > exp + jwtClockSkewSeconds) return deny('token expired');
  const nbf = c['nbf'];
  if (nbf !== undefined && (typeof nbf !== 'number' || now + jwtClockSkewSeconds < nbf))
    return deny('token not yet valid');
  return allow('token valid');
}

function checkAuth(
  model: Model,
  auth: RouteAuth | undefined,
  token: Token | undefined,
  now: number,
): Decision {
  if (!auth) return deny('route has no auth (invalid model)');
  if (!token) return deny('no token');
  const idp = own(model.identityProviders, auth.provider);
  if (!idp) return deny(`unknown provider ${auth.provider}`);
  const valid = tokenValidFor(idp, token, now);
  if (!valid.allowed) return valid;
  const scopes = claimValues(token.claims, idp.scopeClaim);
  const missing = auth.scopes.filter((s) => !scopes.includes(s));
  if (missing.length > 0) return deny(`token lacks scope ${missing.join(', ')}`);
  for (const [claim, values] of Object.entries(auth.claims)) {
    if (claimAt(token.claims, claim) === undefined) return deny(`token lacks claim ${claim}`);
    if (!claimValues(token.claims, claim).some((v) => values.includes(v)))
      return deny(`claim ${claim} has none of ${values.join(', ')}`);
  }
  return allow('token carries the required scopes and claims');
}

function kafkaNameMatches(pattern: 'literal' | 'prefixed', name: string, actual: string): boolean {
  return pattern === 'literal' ? name === actual : actual.startsWith(name);
}

function decideKafka(model: Model, r: KafkaRequest): Decision {
  if (!own(model.workloads, r.identity)) return deny(`${r.identity} is not a workload`);
  const { type, name } = r.resource;
  if (type === 'TOPIC') {
    for (const [topic, t] of Object.entries(model.kafka.topics)) {
      if (!kafkaNameMatches(t.pattern, topic, name)) continue;
      const produces = t.producers.includes(r.identity);
      const consumes = t.consumers.some((c) => c.identity === r.identity);
      if (r.operation === 'WRITE' && produces) return allow(`producer on kafka.topics.${topic}`);
      if (r.operation === 'READ' && consumes) return allow(`consumer on kafka.topics.${topic}`);
      if (r.operation === 'DESCRIBE' && (produces || consumes))
        return allow(`producer or consumer on kafka.topics.${topic}`);
    }
    return deny(`${r.identity} may not ${r.operation} topic ${name}`);
  }
  if (type === 'GROUP') {
    for (const [topic, t] of Object.entries(model.kafka.topics))
      for (const c of t.consumers)
        if (
          c.identity === r.identity &&
          kafkaNameMatches(c.groupPattern, c.group, name) &&
          (r.operation === 'READ' || r.operation === 'DESCRIBE')
        )
          return allow(`consumer group of kafka.topics.${topic}`);
    return deny(`${r.identity} may not ${r.operation} group ${name}`);
  }
  return deny('no cluster-level operation is granted to apps');
}

function decideCql(model: Model, r: CqlRequest): Decision {
  const who = workloadBySpiffeId(model, r.identity);
  if (who === undefined) return deny(`${r.identity} is not a workload`);
  if ((cassandraSystemKeyspaces as readonly string[]).includes(r.keyspace))
    return deny('system keyspaces are never granted');
  const grant = model.cassandra.grants.find(
    (g) =>
      g.identity === who &&
      g.keyspace === r.keyspace &&
      (g.table === undefined || g.table === r.table) &&
      g.permissions.includes(r.permission),
  );
  if (grant)
    return allow(
      `granted ${r.permission} on ${grant.table ? `${grant.keyspace}.${grant.table}` : grant.keyspace}`,
    );
  return deny(
    `${who} holds no ${r.permission} on ${r.table ? `${r.keyspace}.${r.table}` : r.keyspace}`,
  );
}
