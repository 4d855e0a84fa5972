/**
 * An evaluator of a compiled Envoy bootstrap, written from Envoy's documented semantics, used by the
 * property tests to check that `compileEnvoy` output decides as the oracle does.
 *
 * - TLS (DownstreamTlsContext): with `require_client_certificate`, a connection without a client
 *   certificate, or with one that does not chain to the trust bundle, fails the handshake; when
 *   `match_typed_subject_alt_names` is set, one of the certificate's SANs must match one matcher.
 *   https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/common.proto
 * - jwt_authn: the first rule whose match matches the request gives the requirement; a provider verifies
 *   the token's signature, `iss` (when `issuer` is set), `aud` (any of `audiences`), `exp` (required
 *   with `require_expiration`) and `nbf`, allowing `clock_skew_seconds`; failure is a 401 (a wrong
 *   `aud` is jwt_authn's 403, which the compiled `local_reply_config` turns into 401). On success the
 *   payload is written to dynamic metadata under `payload_in_metadata`.
 *   https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto
 * - RBAC with action ALLOW: "allows the request if and only if there is a policy that matches the
 *   request"; a policy matches when any permission and any principal match. `authenticated.principal_name`
 *   is matched against the URI SAN (else DNS SAN, else subject) of the peer certificate.
 *   https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto
 * - StringMatcher `safe_regex` must match the whole value (RE2 full match).
 */
import type {
  EnvoyBootstrap,
  HttpFilter,
  JwtProvider,
  JwtRequirement,
  MetadataMatcher,
  RbacPermission,
  RbacPrincipal,
  RbacRules,
  RouteMatch,
  StringMatcher,
  ValueMatcher,
} from '../compile/envoy-types.ts';
import type { Decision, JsonValue, Peer, Token } from '../request.ts';

/** A connection (and, for HTTP, a request) arriving at one of the sidecar's listeners. */
export interface EnvoyRequest {
  listenerPort: number;
  peer: Peer;
  http?: { method: string; path: string; token?: Token; now: number };
}

const allow = (reason: string): Decision => ({ allowed: true, reason });
const deny = (reason: string): Decision => ({ allowed: false, reason });

/** StringMatcher semantics. */
export function stringMatches(m: StringMatcher, v: string): boolean {
  if ('exact' in m) return v === m.exact;
  if ('prefix' in m) return v.startsWith(m.prefix);
  if ('suffix' in m) return v.endsWith(m.suffix);
  return new RegExp(`^(?:${m.safe_regex.regex})$`).test(v);
}

type Metadata = Record<string, Record<string, JsonValue>>;

interface Ctx {
  peerSan?: string;
  method: string;
  path: string;
  port: number;
  metadata: Metadata;
}

function valueMatches(m: ValueMatcher, v: JsonValue | undefined): boolean {
  if (v === undefined) return false;
  if ('string_match' in m) return typeof v === 'string' && stringMatches(m.string_match, v);
  return Array.isArray(v) && v.some((x) => valueMatches(m.list_match.one_of, x));
}

function metadataMatches(m: MetadataMatcher, md: Metadata): boolean {
  let cur: JsonValue | undefined = md[m.filter];
  for (const { key } of m.path) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || Array.isArray(cur))
      return false;
    cur = cur[key];
  }
  return valueMatches(m.value, cur);
}

function permissionMatches(p: RbacPermission, c: Ctx): boolean {
  if ('any' in p) return true;
  if ('header' in p) {
    const v =
      p.header.name === ':method' ? c.method : p.header.name === ':path' ? c.path : undefined;
    return v !== undefined && stringMatches(p.header.string_match, v);
  }
  if ('url_path' in p) return stringMatches(p.url_path.path, c.path);
  if ('destination_port' in p) return p.destination_port === c.port;
  if ('and_rules' in p) return p.and_rules.rules.every((r) => permissionMatches(r, c));
  if ('or_rules' in p) return p.or_rules.rules.some((r) => permissionMatches(r, c));
  return !permissionMatches(p.not_rule, c);
}

function principalMatches(p: RbacPrincipal, c: Ctx): boolean {
  if ('any' in p) return true;
  if ('authenticated' in p)
    return c.peerSan !== undefined && stringMatches(p.authenticated.principal_name, c.peerSan);
  if ('sourced_metadata' in p)
    return metadataMatches(p.sourced_metadata.metadata_matcher, c.metadata);
  if ('and_ids' in p) return p.and_ids.ids.every((x) => principalMatches(x, c));
  if ('or_ids' in p) return p.or_ids.ids.some((x) => principalMatches(x, c));
  return !principalMatches(p.not_id, c);
}

function rbac(rules: RbacRules, c: Ctx): Decision {
  const hit = Object.entries(rules.policies).find(
    ([, pol]) =>
      pol.permissions.some((p) => permissionMatches(p, c)) &&
      pol.principals.some((p) => principalMatches(p, c)),
  );
  if (rules.action === 'ALLOW')
    return hit ? allow(`rbac policy ${hit[0]}`) : deny('403: no RBAC policy matches');
  if (rules.action === 'DENY')
    return hit ? deny(`403: rbac deny ${hit[0]}`) : allow('no RBAC deny matches');
  return allow('rbac log only');
}

function routeMatches(m: RouteMatch, c: Ctx): boolean {
  if (m.prefix !== undefined && !c.path.startsWith(m.prefix)) return false;
  if (m.path !== undefined && c.path !== m.path) return false;
  if (m.safe_regex !== undefined && !stringMatches({ safe_regex: m.safe_regex }, c.path))
    return false;
  for (const h of m.headers ?? []) {
    const v = h.name === ':method' ? c.method : undefined;
    if (v === undefined || !stringMatches(h.string_match, v)) return false;
  }
  return true;
}

function verify(p: JwtProvider, t: Token, now: number): boolean {
  if (t.alg.toLowerCase() === 'none' || !t.signatureValid) return false;
  if (t.claims['iss'] !== p.issuer) return false;
  if (p.audiences.length > 0) {
    const aud = t.claims['aud'];
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!auds.some((a) => typeof a === 'string' && p.audiences.includes(a))) return false;
  }
  const exp = t.claims['exp'];
  if (exp === undefined && p.require_expiration) return false;
  if (exp !== undefined && (typeof exp !== 'number' || now > exp + p.clock_skew_seconds))
    return false;
  const nbf = t.claims['nbf'];
  if (nbf !== undefined && (typeof nbf !== 'number' || now + p.clock_skew_seconds < nbf))
    return false;
  return true;
}

/** Returns the providers that verified the token, or undefined when the requirement fails. */
function satisfy(
  req: JwtRequirement,
  providers: Record<string, JwtProvider>,
  t: Token | undefined,
  now: number,
): string[] | undefined {
  if ('allow_missing' in req) return t === undefined ? [] : undefined;
  if ('provider_name' in req) {
    const p = providers[req.provider_name];
    return p && t && verify(p, t, now) ? [req.provider_name] : undefined;
  }
  for (const r of req.requires_any.requirements) {
    const ok = satisfy(r, providers, t, now);
    if (ok) return ok;
  }
  return undefined;
}

function runFilters(
  filters: HttpFilter[],
  c: Ctx,
  http: NonNullable<EnvoyRequest['http']>,
): Decision {
  for (const f of filters) {
    if (f.name === 'envoy.filters.http.jwt_authn') {
      const rule = f.typed_config.rules.find((r) => routeMatches(r.match, c));
      if (!rule) continue;
      const ok = satisfy(rule.requires, f.typed_config.providers, http.token, http.now);
      if (!ok) return deny('401: jwt_authn');
      for (const name of ok) {
        const p = f.typed_config.providers[name];
        if (p && http.token)
          c.metadata[f.name] = {
            ...(c.metadata[f.name] ?? {}),
            [p.payload_in_metadata]: http.token.claims,
          };
      }
    } else if (f.name === 'envoy.filters.http.rbac') {
      const d = rbac(f.typed_config.rules, c);
      if (!d.allowed) return d;
    }
  }
  return allow('filters passed');
}

/** Evaluates a request against a compiled bootstrap. */
export function evaluateEnvoy(bootstrap: EnvoyBootstrap, req: EnvoyRequest): Decision {
  const l = bootstrap.static_resources.listeners.find(
    (x) => x.address.socket_address.port_value === req.listenerPort,
  );
  if (!l) return deny(`no listener on port ${req.listenerPort}`);
  const chain = l.filter_chains[0];
  if (!chain) return deny('listener has no filter chain');
  let peerSan: string | undefined;
  const ts = chain.transport_socket;
  if (
    ts &&
    ts.typed_config['@type'].endsWith('DownstreamTlsContext') &&
    'require_client_certificate' in ts.typed_config
  ) {
    if (req.peer.kind === 'none') return deny('TLS: client certificate required');
    if (!req.peer.trusted) return deny('TLS: certificate not trusted');
    const ctx = ts.typed_config.common_tls_context;
    const sans =
      ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names;
    const id = req.peer.spiffeId;
    if (sans.length > 0 && !sans.some((s) => s.san_type === 'URI' && stringMatches(s.matcher, id)))
      return deny('TLS: SAN does not match');
    peerSan = id;
  }
  const c: Ctx = {
    peerSan,
    method: req.http?.method ?? '',
    path: req.http?.path ?? '',
    port: req.listenerPort,
    metadata: {},
  };
  for (const f of chain.filters) {
    if (f.name === 'envoy.filters.network.rbac') {
      const d = rbac(f.typed_config.rules, c);
      if (!d.allowed) return d;
    } else if (f.name === 'envoy.filters.network.tcp_proxy') {
      return allow(`proxied to ${f.typed_config.cluster}`);
    } else {
      if (!req.http) return deny('HTTP listener, no HTTP request');
      const hcm = f.typed_config;
      const d = runFilters(hcm.http_filters, c, req.http);
      if (!d.allowed) return d;
      const route = hcm.route_config.virtual_hosts[0]?.routes.find((r) => routeMatches(r.match, c));
      if (!route || route.direct_response) return deny('404: no route');
      return allow(`routed to ${route.route?.cluster ?? '?'}`);
    }
  }
  return deny('no terminal filter');
}
