/**
 * An evaluator of Istio security objects, written from Istio's documented semantics, used by the property
 * tests to check that `compileIstio` output decides as the oracle does.
 *
 * - PeerAuthentication: the most specific policy wins (workload selector, then namespace, then the root
 *   namespace); with none, the mode is PERMISSIVE.
 *   https://istio.io/latest/docs/concepts/security/#peer-authentication
 * - RequestAuthentication: "requests with invalid authentication information will be rejected; requests
 *   without any authentication credentials will be accepted but will not have any authenticated
 *   identity". Istio checks `exp` and `nbf` when present but does not require `exp`.
 *   https://istio.io/latest/docs/concepts/security/#request-authentication
 * - AuthorizationPolicy: "CUSTOM, then DENY, then ALLOW": deny if a DENY policy matches; allow if no
 *   ALLOW policy applies to the workload; allow if an ALLOW policy matches; otherwise deny. A policy
 *   without rules matches nothing; a rule matches when its `from`, `to` and `when` all match (each
 *   missing part matches). For a TCP request, a rule with HTTP-only fields does not match in an ALLOW
 *   policy, while in a DENY policy those fields are ignored.
 *   https://istio.io/latest/docs/reference/config/security/authorization-policy/
 * - Claims: lists match any element; the `scope` and `permission` string claims are split on spaces
 *   (Istio ≥ 1.21), other string claims are compared whole.
 */
import { identityHeaders, systemNamespaces } from '@trellis/contracts';
import type {
  AuthorizationPolicy,
  IstioJwtRule,
  IstioResource,
  IstioRule,
  WorkloadSelector,
} from '../compile/istio.ts';
import type { Decision, Peer, Token } from '../request.ts';
import { claimAt, claimValues, jwtClockSkewSeconds } from '../request.ts';
import { istioPathMatches, istioValueMatches } from './match.ts';

/** What the destination sidecar knows about a request. */
export interface IstioRequest {
  namespace: string;
  labels: Record<string, string>;
  port: number;
  peer: Peer;
  /** Present for HTTP requests, absent for TCP connections. */
  http?: {
    method: string;
    path: string;
    token?: Token;
    now: number;
    /** An x-forwarded-client-cert header the caller sent along, if any. */
    xfcc?: string;
  };
}

const allow = (reason: string): Decision => ({ allowed: true, reason });
const deny = (reason: string): Decision => ({ allowed: false, reason });

function selects(selector: WorkloadSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return Object.entries(selector.matchLabels).every(([k, v]) => labels[k] === v);
}

/** Policies that apply to the workload: root-namespace (mesh-wide) ones and its namespace's. */
function applicable<T extends IstioResource>(all: T[], req: IstioRequest, root: string): T[] {
  return all.filter(
    (r) =>
      (r.metadata.namespace === root && r.spec.selector === undefined) ||
      (r.metadata.namespace === req.namespace && selects(r.spec.selector, req.labels)),
  );
}

function mtlsMode(
  resources: IstioResource[],
  req: IstioRequest,
  root: string,
): 'STRICT' | 'PERMISSIVE' {
  const pas = resources.filter((r) => r.kind === 'PeerAuthentication');
  const workload = pas.find(
    (p) =>
      p.metadata.namespace === req.namespace &&
      p.spec.selector &&
      selects(p.spec.selector, req.labels),
  );
  const ns = pas.find((p) => p.metadata.namespace === req.namespace && !p.spec.selector);
  const mesh = pas.find((p) => p.metadata.namespace === root && !p.spec.selector);
  return (workload ?? ns ?? mesh)?.spec.mtls.mode ?? 'PERMISSIVE';
}

interface Authn {
  principal?: string;
  claims?: Token['claims'];
  requestPrincipal?: string;
}

/**
 * The JWT rule that validates the request's token: `{ rule }` when one does, `{}` when there is no
 * token or no rule applies (Istio lets such a request through without a request principal), and a
 * deny decision for a token that fails the rule.
 */
function requestAuthn(
  resources: IstioResource[],
  req: IstioRequest,
  root: string,
): { rule?: IstioJwtRule } | Decision {
  const t = req.http?.token;
  if (!req.http || !t) return {};
  const rules = applicable(
    resources.filter((r) => r.kind === 'RequestAuthentication'),
    req,
    root,
  ).flatMap((r) => r.spec.jwtRules);
  if (rules.length === 0) return {};
  const rule = rules.find((r) => r.issuer === t.claims['iss']);
  if (!rule) return deny('401: token issuer not configured');
  if (t.alg.toLowerCase() === 'none' || !t.signatureValid) return deny('401: bad signature');
  const aud = t.claims['aud'];
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (
    rule.audiences.length > 0 &&
    !auds.some((a) => typeof a === 'string' && rule.audiences.includes(a))
  )
    return deny('401: audience not allowed');
  const { now } = req.http;
  const exp = t.claims['exp'];
  if (exp !== undefined && (typeof exp !== 'number' || now > exp + jwtClockSkewSeconds))
    return deny('401: expired');
  const nbf = t.claims['nbf'];
  if (nbf !== undefined && (typeof nbf !== 'number' || now + jwtClockSkewSeconds < nbf))
    return deny('401: not yet valid');
  return { rule };
}

/** Evaluates a request against Istio objects. `rootNamespace` defaults to istio-system. */
export function evaluateIstio(
  resources: IstioResource[],
  req: IstioRequest,
  rootNamespace: string = systemNamespaces.istio,
): Decision {
  // Transport: mTLS.
  const mode = mtlsMode(resources, req, rootNamespace);
  const authn: Authn = {};
  if (req.peer.kind === 'cert') {
    if (!req.peer.trusted) return deny('TLS handshake fails: certificate not from the mesh CA');
    authn.principal = req.peer.spiffeId.replace(/^spiffe:\/\//, '');
  } else if (mode === 'STRICT') return deny('STRICT mTLS: plaintext refused');

  // Request authentication.
  const jwt = requestAuthn(resources, req, rootNamespace);
  if ('allowed' in jwt) return jwt;
  if (jwt.rule && req.http?.token) {
    const { claims } = req.http.token;
    authn.claims = claims;
    const sub = claims['sub'];
    authn.requestPrincipal = `${jwt.rule.issuer}/${typeof sub === 'string' ? sub : ''}`;
  }

  // Authorization.
  const policies = applicable(
    resources.filter((r): r is AuthorizationPolicy => r.kind === 'AuthorizationPolicy'),
    req,
    rootNamespace,
  );
  const action = (p: AuthorizationPolicy) => p.spec.action ?? 'ALLOW';
  for (const p of policies.filter((x) => action(x) === 'DENY'))
    if ((p.spec.rules ?? []).some((r) => ruleMatches(r, req, authn, 'DENY')))
      return deny(`403: denied by ${p.metadata.namespace}/${p.metadata.name}`);
  const allows = policies.filter((x) => action(x) === 'ALLOW');
  if (allows.length === 0) return allow('no ALLOW policy applies');
  for (const p of allows)
    if ((p.spec.rules ?? []).some((r) => ruleMatches(r, req, authn, 'ALLOW')))
      return allow(`allowed by ${p.metadata.namespace}/${p.metadata.name}`);
  return deny('403: no ALLOW policy matches');
}

/**
 * The identity headers the destination sidecar hands the app with a request it lets through, or
 * undefined when it refuses the request:
 * - the verified token's payload in the validating rule's `outputPayloadToHeader`, as Envoy's
 *   `forward_payload_header` sends it: base64url of the payload JSON, unpadded (Istio passes the field
 *   through to Envoy unchanged: pilot's JwtFilter, `ForwardPayloadHeader: OutputPayloadToHeader`);
 * - x-forwarded-client-cert with the mTLS peer's element appended: Istio's sidecar inbound connection
 *   manager is fixed at `APPEND_FORWARD` with Subject, URI and DNS (pilot's
 *   buildSidecarInboundHTTPOpts), so the last element is always the one the sidecar vouches for. Istio
 *   SVIDs have an empty subject and no DNS SAN; `By` and `Hash` are left out of this model.
 */
export function istioUpstreamHeaders(
  resources: IstioResource[],
  req: IstioRequest,
  rootNamespace: string = systemNamespaces.istio,
): Record<string, string> | undefined {
  if (!req.http || !evaluateIstio(resources, req, rootNamespace).allowed) return undefined;
  const headers: Record<string, string> = {};
  const jwt = requestAuthn(resources, req, rootNamespace);
  const token = req.http.token;
  if (!('allowed' in jwt) && jwt.rule?.outputPayloadToHeader && token)
    headers[jwt.rule.outputPayloadToHeader.toLowerCase()] = Buffer.from(
      JSON.stringify(token.claims),
    ).toString('base64url');
  const incoming = req.http.xfcc;
  if (req.peer.kind === 'cert') {
    const element = `Subject="";URI=${req.peer.spiffeId}`;
    headers[identityHeaders.clientCert] = incoming ? `${incoming},${element}` : element;
  } else if (incoming) headers[identityHeaders.clientCert] = incoming;
  return headers;
}

function anyMatch(patterns: string[] | undefined, value: string | undefined): boolean {
  return value !== undefined && (patterns ?? []).some((p) => istioValueMatches(p, value));
}

/** One field: absent → matches; `values` → some matches; `notValues` → none matches. */
function field(
  values: string[] | undefined,
  notValues: string[] | undefined,
  value: string | undefined,
  match = anyMatch,
): boolean {
  if (values !== undefined && !match(values, value)) return false;
  if (notValues !== undefined && match(notValues, value)) return false;
  return true;
}

function ruleMatches(
  rule: IstioRule,
  req: IstioRequest,
  authn: Authn,
  action: 'ALLOW' | 'DENY',
): boolean {
  const nsOf = (p: string | undefined) => p?.match(/\/ns\/([^/]+)\//)?.[1];
  if (rule.from && rule.from.length > 0) {
    const ok = rule.from.some(
      ({ source: s }) =>
        field(s.principals, s.notPrincipals, authn.principal) &&
        field(s.requestPrincipals, s.notRequestPrincipals, authn.requestPrincipal) &&
        field(s.namespaces, s.notNamespaces, nsOf(authn.principal)),
    );
    if (!ok) return false;
  }
  if (rule.to && rule.to.length > 0) {
    const ok = rule.to.some(({ operation: o }) => {
      if (!field(o.ports, o.notPorts, String(req.port))) return false;
      const httpOnly = [o.methods, o.notMethods, o.paths, o.notPaths, o.hosts, o.notHosts].some(
        (f) => f !== undefined,
      );
      if (!req.http) return !(httpOnly && action === 'ALLOW');
      const pathMatch = (ps: string[] | undefined, v: string | undefined) =>
        v !== undefined && (ps ?? []).some((p) => istioPathMatches(p, v));
      return (
        field(o.methods, o.notMethods, req.http.method) &&
        field(o.paths, o.notPaths, req.http.path, pathMatch)
      );
    });
    if (!ok) return false;
  }
  for (const c of rule.when ?? []) {
    const m = c.key.match(/^request\.auth\.claims((?:\[[^\]]+\])+)$/);
    if (m?.[1]) {
      if (!req.http) {
        if (action === 'ALLOW') return false;
        continue;
      }
      const path = [...m[1].matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]).join('.');
      const claims = authn.claims;
      const vals = claims && claimAt(claims, path) !== undefined ? claimValues(claims, path) : [];
      const hit = (ps: string[] | undefined) => vals.some((v) => anyMatch(ps, v));
      if (c.values !== undefined && !hit(c.values)) return false;
      if (c.notValues !== undefined && hit(c.notValues)) return false;
      continue;
    }
    if (c.key === 'source.principal') {
      if (!field(c.values, c.notValues, authn.principal)) return false;
      continue;
    }
    if (c.key === 'destination.port') {
      if (!field(c.values, c.notValues, String(req.port))) return false;
      continue;
    }
    // A key this evaluator does not model never matches: safe for ALLOW, and the compiler emits none.
    return false;
  }
  return true;
}
