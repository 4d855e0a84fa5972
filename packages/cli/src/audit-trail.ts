/**
 * The audit trail of a local stack, pure: each log line of each component normalised to one
 * {@link AuditRecord}, then filtered and joined into one timeline. The formats are the ones the stack
 * writes (docs/observability.md): the sidecars' JSON access logs (`compile/envoy/access-log.ts`),
 * nginx's JSON log (`compile/nginx.ts`), the services' pino lines, Cassandra's FileAuditLogger lines,
 * Kafka's authorizer log and Keycloak's jboss-logging events. I/O lives in `verbs/audit.ts`.
 */

/** The kinds of log file the reader knows. */
export type LogKind = 'envoy' | 'nginx' | 'process' | 'cassandra-audit' | 'kafka-authorizer';

/** What a log line says, in the same fields whatever wrote it. */
export interface AuditRecord {
  /** ISO 8601, UTC, milliseconds: when the request (or event) started. */
  time: string;
  /** What wrote the line: nginx, envoy, app, cassandra, kafka, keycloak. */
  source: 'nginx' | 'envoy' | 'app' | 'cassandra' | 'kafka' | 'keycloak';
  /** Which one of them: its run directory, e.g. `orders-api-sidecar`. */
  component: string;
  requestId?: string;
  /** The end user or agent: the token's `sub` (Keycloak's user id). */
  subject?: string;
  /** The workload or role that acted: peer SPIFFE ID, Cassandra role, Kafka principal. */
  identity?: string;
  /** The OAuth client (`azp`, Keycloak's clientId). */
  client?: string;
  scopes?: string;
  /** The model route (sidecars) or the path. */
  route?: string;
  /** What was asked: `POST /orders`, `INSERT orders`, `WRITE Topic:LITERAL:orders`, `CLIENT_LOGIN`. */
  action?: string;
  status?: number;
  decision?: 'allow' | 'deny';
  /** Why: the RBAC policy that allowed, the denial details, the error. */
  reason?: string;
  /** Joined to a request by time and identity, not by its request id (data stores know no id). */
  correlated?: true;
}

type Json = Record<string, unknown>;

/** A string field, or undefined for missing, null, '-' and ''. */
function str(v: unknown): string | undefined {
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' && v !== '' && v !== '-' ? v : undefined;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function iso(ms: number): string | undefined {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** Drops undefined fields, so records compare and print cleanly. */
function clean(r: AuditRecord): AuditRecord {
  return Object.fromEntries(
    Object.entries(r).filter(([, v]) => v !== undefined),
  ) as unknown as AuditRecord;
}

function parseJson(line: string): Json | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return obj(JSON.parse(line));
  } catch {
    return undefined;
  }
}

/** The first provider's verified claims in an Envoy line's `jwt` object. */
function jwtClaims(j: Json): { sub?: string; azp?: string; scope?: string } {
  for (const claims of Object.values(obj(j.jwt) ?? {})) {
    const c = obj(claims);
    const sub = str(c?.sub);
    if (c && sub !== undefined) return { sub, azp: str(c.azp), scope: str(c.scope) };
  }
  return {};
}

/**
 * An Envoy HTTP line's decision: RBAC's, else jwt_authn's refusal of a token, else the local rate
 * limit; none when this sidecar decided nothing (an edge passing on the upstream's answer).
 */
function envoyDecision(j: Json): Pick<AuditRecord, 'decision' | 'reason'> {
  const details = str(j.details);
  if (str(j.rbac) === 'denied') return { decision: 'deny', reason: details };
  if (details?.startsWith('jwt_authn_access_denied') === true)
    return { decision: 'deny', reason: str(j.jwtFailure) ?? details };
  if (details === 'local_rate_limited') return { decision: 'deny', reason: details };
  if (str(j.rbac) === 'allowed') return { decision: 'allow', reason: str(j.rbacPolicy) };
  return {};
}

/** One line of a sidecar's access log (HTTP request or TCP connection). */
export function parseEnvoyLine(line: string, component: string): AuditRecord | undefined {
  const j = parseJson(line);
  const time = str(j?.time);
  if (!j || j.source !== 'envoy' || time === undefined) return undefined;
  const base = { time, source: 'envoy' as const, component };
  if (j.method === undefined) {
    const up = str(j.upstreamPeer);
    const denied = str(j.rbac) === 'denied';
    return clean({
      ...base,
      identity: str(j.peer),
      action: `${str(j.listener) ?? 'tcp'}${up !== undefined ? ` → ${up}` : ''}`,
      ...(denied ? { decision: 'deny', reason: str(j.details) } : {}),
      ...(str(j.rbac) === 'allowed' ? { decision: 'allow', reason: str(j.rbacPolicy) } : {}),
    });
  }
  const claims = jwtClaims(j);
  return clean({
    ...base,
    requestId: str(j.requestId),
    subject: claims.sub,
    identity: str(j.peer),
    client: claims.azp,
    scopes: claims.scope,
    route: str(j.route),
    action: `${str(j.method) ?? '?'} ${str(j.path) ?? '?'}`,
    status: num(j.status),
    ...envoyDecision(j),
  });
}

/** One line of nginx's JSON access log (`msec` is the end; the start is `msec - duration_s`). */
export function parseNginxLine(line: string, component: string): AuditRecord | undefined {
  const j = parseJson(line);
  if (!j || j.request_id === undefined) return undefined;
  const end = num(j.msec);
  const time =
    end !== undefined
      ? iso((end - (num(j.duration_s) ?? 0)) * 1000)
      : str(j.time) && iso(Date.parse(String(j.time)));
  if (time === undefined) return undefined;
  const limited = str(j.limit_req) === 'REJECTED';
  return clean({
    time,
    source: 'nginx',
    component,
    requestId: str(j.request_id),
    identity: str(j.client),
    action: `${str(j.method) ?? '?'} ${str(j.uri) ?? '?'}`,
    status: num(j.status),
    ...(limited ? { decision: 'deny', reason: 'rate limit (limit_req)' } : {}),
  });
}

/** A service's pino line that names a request (`requestId`), with the caller it bound. */
function parseAppLine(j: Json, component: string): AuditRecord | undefined {
  const time = num(j.time);
  const requestId = str(j.requestId);
  if (time === undefined || requestId === undefined) return undefined;
  const caller = obj(j.caller);
  const req = obj(j.req);
  const status = num(obj(j.res)?.statusCode);
  const what = req
    ? `${str(req.method) ?? '?'} ${(str(req.url) ?? '?').split('?')[0]}`
    : str(j.msg);
  return clean({
    time: iso(time) ?? '',
    source: 'app',
    component: str(j.service) ?? component,
    requestId,
    subject: str(caller?.sub) ?? str(j.subject),
    identity: str(caller?.peer),
    client: str(caller?.client),
    action: req ? `${what ?? ''} (${str(j.msg) ?? ''})` : what,
    status,
    ...(str(j.reason) !== undefined ? { decision: 'deny', reason: str(j.reason) } : {}),
  });
}

/** `key="value", key=value` pairs of a Keycloak event line. */
function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    if (m[1] !== undefined) out[m[1]] = m[2] ?? m[3] ?? '';
  return out;
}

const keycloakEvent =
  /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})[,.](\d{3}) +[A-Z]+ +\[org\.keycloak\.events\] \([^)]*\) (.*)$/;

/** A Keycloak event (jboss-logging listener) line; its timestamp is the machine's local time. */
export function parseKeycloakLine(line: string, component: string): AuditRecord | undefined {
  const m = keycloakEvent.exec(line);
  if (!m) return undefined;
  const [, day, clock, ms, rest] = m;
  const kv = keyValues(rest ?? '');
  const type = kv.type;
  if (type === undefined) return undefined;
  const error = kv.error;
  const failed = type.endsWith('_ERROR');
  return clean({
    time: iso(new Date(`${day}T${clock}.${ms}`).getTime()) ?? '',
    source: 'keycloak',
    component,
    subject: kv.userId,
    client: kv.clientId,
    identity: kv.username,
    action: [type, kv.grant_type].filter(Boolean).join(' '),
    decision: failed ? 'deny' : 'allow',
    reason: error,
  });
}

/** One line of a process log: a service's pino JSON, or a Keycloak event. */
export function parseProcessLine(line: string, component: string): AuditRecord | undefined {
  const j = parseJson(line);
  if (j) return parseAppLine(j, component);
  return parseKeycloakLine(line, component);
}

const cassandraFields = ['user', 'host', 'source', 'port', 'timestamp', 'type', 'category'];

/**
 * A FileAuditLogger line (Cassandra 5.0 `AuditLogEntry.getLogString`):
 * `user:R|host:H|source:/IP|port:P|timestamp:MS|type:T|category:C[|batch:B][|ks:K][|scope:S][|operation:CQL]`.
 * The operation (CQL text) comes last and may itself hold `|`.
 */
export function parseCassandraAuditLine(line: string, component: string): AuditRecord | undefined {
  const op = line.indexOf('|operation:');
  const head = op < 0 ? line : line.slice(0, op);
  const f: Record<string, string> = {};
  for (const part of head.split('|')) {
    const i = part.indexOf(':');
    if (i > 0) f[part.slice(0, i)] = part.slice(i + 1);
  }
  if (!cassandraFields.every((k) => k in f)) return undefined;
  const type = f.type ?? '';
  const failed = /(_ERROR|UNAUTHORIZED_ATTEMPT|_FAILURE)$/.test(type);
  const where = [f.ks, f.scope].filter((x) => x !== undefined && x !== 'null').join('.');
  return clean({
    time: iso(Number(f.timestamp)) ?? '',
    source: 'cassandra',
    component,
    identity: f.user === 'null' ? undefined : f.user,
    action: where !== '' ? `${type} ${where}` : type,
    decision: failed ? 'deny' : 'allow',
    reason: f.category,
  });
}

const kafkaDecision =
  /^(\S+) +[A-Z]+ +Principal = (\S+) is (Allowed|Denied) operation = (\S+) from host = (\S+) on resource = (\S+)(?: for request = (\S+))?/;

/** A `kafka.authorizer.logger` line (StandardAuthorizer, Kafka 4.x), our layout: `<UTC ISO> <level> <message>`. */
export function parseKafkaAuthorizerLine(line: string, component: string): AuditRecord | undefined {
  const m = kafkaDecision.exec(line);
  if (!m) return undefined;
  const [, time, principal, verdict, operation, host, resource, request] = m;
  const ms = Date.parse(time ?? '');
  if (!Number.isFinite(ms)) return undefined;
  return clean({
    time: iso(ms) ?? '',
    source: 'kafka',
    component,
    identity: principal?.replace(/^User:/, ''),
    action: `${operation ?? '?'} ${resource ?? '?'}${request !== undefined ? ` (${request})` : ''}`,
    decision: verdict === 'Allowed' ? 'allow' : 'deny',
    reason: `from ${host ?? '?'}`,
  });
}

const parsers: Record<LogKind, (line: string, component: string) => AuditRecord | undefined> = {
  envoy: parseEnvoyLine,
  nginx: parseNginxLine,
  process: parseProcessLine,
  'cassandra-audit': parseCassandraAuditLine,
  'kafka-authorizer': parseKafkaAuthorizerLine,
};

/**
 * The entries of a Cassandra audit log: a statement's CQL keeps its newlines, so a line that does not
 * start a new entry (`user:`) continues the one before, joined with a space.
 */
function cassandraEntries(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('user:')) out.push(line.trimEnd());
    else if (out.length > 0 && line.trim() !== '')
      out[out.length - 1] = `${out[out.length - 1] ?? ''} ${line.trim()}`;
  }
  return out;
}

/** Every record in the text of one log file. */
export function parseLog(kind: LogKind, component: string, text: string): AuditRecord[] {
  const lines = kind === 'cassandra-audit' ? cassandraEntries(text) : text.split('\n');
  const out: AuditRecord[] = [];
  for (const line of lines) {
    const r = line.trim() === '' ? undefined : parsers[kind](line.trimEnd(), component);
    if (r && r.time !== '') out.push(r);
  }
  return out;
}

/** Filters of {@link timeline}; all given ones must hold. */
export interface AuditFilter {
  requestId?: string;
  subject?: string;
  /** Matches a SPIFFE ID, role or principal containing it (`-` and `_` alike, any case). */
  identity?: string;
  /** Only records at or after this time (ms since the epoch). */
  sinceMs?: number;
}

/** `orders_api` and `orders-api` alike; case-insensitive. */
const loose = (s: string) => s.toLowerCase().replaceAll('_', '-');

function matchesIdentity(r: AuditRecord, want: string): boolean {
  return r.identity !== undefined && loose(r.identity).includes(loose(want));
}

/** Kafka requests a request causes: its produce, and the consumer's fetch that delivers it. */
const causedKafkaRequests = /\((Produce|Fetch)\)$/;

/**
 * The data-store records (Cassandra, Kafka) a request caused, as far as logs without a request id
 * can tell: between the request's first and last records (every write and the fetch that delivers
 * the event come before the service line that reports them), by a workload that handled it (its
 * sidecar or service named in the identity), and for Kafka only produce and fetch (a consumer's
 * heartbeats and offset commits are its own doing).
 */
function correlated(all: AuditRecord[], request: AuditRecord[]): AuditRecord[] {
  if (request.length === 0) return [];
  const times = request.map((r) => Date.parse(r.time));
  const from = Math.min(...times);
  const to = Math.max(...times);
  const workloads = new Set(
    request
      .filter((r) => r.source === 'envoy' || r.source === 'app')
      .map((r) => r.component.replace(/-sidecar$/, '')),
  );
  return all
    .filter((r) => r.source === 'cassandra' || r.source === 'kafka')
    .filter((r) => r.source !== 'kafka' || causedKafkaRequests.test(r.action ?? ''))
    .filter((r) => {
      const t = Date.parse(r.time);
      return t >= from && t <= to && [...workloads].some((w) => matchesIdentity(r, w));
    })
    .map((r) => ({ ...r, correlated: true as const }));
}

/** The records that pass `f`, oldest first (a request id also brings its correlated records). */
export function timeline(all: AuditRecord[], f: AuditFilter): AuditRecord[] {
  const pass = (r: AuditRecord) =>
    (f.subject === undefined || r.subject === f.subject) &&
    (f.identity === undefined || matchesIdentity(r, f.identity)) &&
    (f.sinceMs === undefined || Date.parse(r.time) >= f.sinceMs);
  let picked = all.filter((r) => f.requestId === undefined || r.requestId === f.requestId);
  if (f.requestId !== undefined) picked = [...picked, ...correlated(all, picked)];
  return picked.filter(pass).sort((a, b) => a.time.localeCompare(b.time));
}

const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `nowMs` (`90s`, `15m`, `2h`, `1d`) or an ISO 8601 time. */
export function parseSince(value: string, nowMs: number): number {
  const d = /^(\d+)([smhd])$/.exec(value);
  if (d) return nowMs - Number(d[1]) * (units[d[2] ?? 's'] ?? 1_000);
  const t = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(t))
    throw new Error(
      `--since: '${value}' is neither a duration (30s, 15m, 2h, 1d) nor an ISO 8601 time`,
    );
  return t;
}

const columns: [string, (r: AuditRecord) => string, number][] = [
  ['TIME', (r) => r.time.slice(11, 23), 12],
  ['SOURCE', (r) => `${r.component}${r.correlated ? '~' : ''}`, 20],
  ['DECISION', (r) => r.decision ?? '', 8],
  ['STATUS', (r) => (r.status !== undefined ? String(r.status) : ''), 6],
  ['IDENTITY', (r) => r.identity ?? '', 48],
  ['SUBJECT', (r) => r.subject ?? '', 36],
  ['CLIENT', (r) => r.client ?? '', 14],
  ['ROUTE/ACTION', (r) => [r.route, r.action].filter(Boolean).join(' '), 48],
  ['REASON', (r) => r.reason ?? '', 44],
];

/** The timeline as a text table; `~` marks a record joined by time and identity. */
export function formatTable(records: AuditRecord[]): string {
  const cell = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w));
  const lines = [columns.map(([h, , w]) => cell(h, w)).join(' ')];
  for (const r of records) lines.push(columns.map(([, f, w]) => cell(f(r), w)).join(' '));
  return `${lines.map((l) => l.trimEnd()).join('\n')}\n`;
}
