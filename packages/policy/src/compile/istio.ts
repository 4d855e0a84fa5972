/**
 * Istio: PeerAuthentication (STRICT mesh-wide and per namespace), RequestAuthentication per workload that
 * serves routes, and AuthorizationPolicy (an allow-nothing default deny per namespace, plus one ALLOW
 * policy per workload). API: security.istio.io/v1 (Istio ≥ 1.22), fields as in
 * https://istio.io/latest/docs/reference/config/security/authorization-policy/,
 * https://istio.io/latest/docs/reference/config/security/request_authentication/ and
 * https://istio.io/latest/docs/reference/config/security/peer_authentication/.
 */
import { identityHeaders, labelKeys, systemNamespaces } from '@trellis/contracts';
import { own } from '../identity.ts';
import { callersOf, namespaceOf, routesOf, spiffeId } from '../identity.ts';
import type { Route, Workload } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
import type { ValidModel } from '../validate.ts';
import { checkRegion, meta, templateSegments, withNamespace } from './common.ts';
import type { ObjectMeta } from './common.ts';

/** Label selector. */
export interface WorkloadSelector {
  matchLabels: Record<string, string>;
}

/** security.istio.io/v1 PeerAuthentication. */
export interface PeerAuthentication {
  apiVersion: 'security.istio.io/v1';
  kind: 'PeerAuthentication';
  metadata: ObjectMeta;
  spec: { selector?: WorkloadSelector; mtls: { mode: 'STRICT' | 'PERMISSIVE' } };
}

/** One JWT rule of a RequestAuthentication. */
export interface IstioJwtRule {
  issuer: string;
  audiences: string[];
  jwksUri: string;
  /**
   * Header the sidecar puts the verified payload in for the app: Istio passes it to Envoy's
   * `forward_payload_header`, which sends `base64url(payload JSON)` without padding, the form the
   * services parse (the same header and encoding as the local sidecar's jwt_authn).
   */
  outputPayloadToHeader: string;
  forwardOriginalToken: boolean;
}

/** security.istio.io/v1 RequestAuthentication. */
export interface RequestAuthentication {
  apiVersion: 'security.istio.io/v1';
  kind: 'RequestAuthentication';
  metadata: ObjectMeta;
  spec: { selector: WorkloadSelector; jwtRules: IstioJwtRule[] };
}

/** AuthorizationPolicy `Source`. */
export interface IstioSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
}

/** AuthorizationPolicy `Operation`. */
export interface IstioOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

/** AuthorizationPolicy `Condition`. */
export interface IstioCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

/** AuthorizationPolicy `Rule`. */
export interface IstioRule {
  from?: { source: IstioSource }[];
  to?: { operation: IstioOperation }[];
  when?: IstioCondition[];
}

/** security.istio.io/v1 AuthorizationPolicy. */
export interface AuthorizationPolicy {
  apiVersion: 'security.istio.io/v1';
  kind: 'AuthorizationPolicy';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
    rules?: IstioRule[];
  };
}

/** Any object the Istio compiler emits. */
export type IstioResource = PeerAuthentication | RequestAuthentication | AuthorizationPolicy;

/** Options of `compileIstio`. */
export interface IstioOptions {
  /** Namespace of workloads that do not name one. @default the model's `namespace` */
  namespace?: string;
  /** Region label put on every object (must be declared in the model). */
  region?: string;
  /** Istio's root namespace, where the mesh-wide PeerAuthentication goes. @default 'istio-system' */
  rootNamespace?: string;
  /** Pod label that carries the workload name. @default 'app' */
  selectorLabel?: string;
}

const defaults = { rootNamespace: systemNamespaces.istio, selectorLabel: labelKeys.app } as const;

/** An Istio principal is the SPIFFE ID without its scheme (`td/ns/x/sa/y`). */
export function istioPrincipal(id: string): string {
  return id.replace(/^spiffe:\/\//, '');
}

/** `/orders/{id}` → `/orders/{*}` (Istio path templating: `{*}` is exactly one segment). */
export function istioPath(template: string): string {
  return `/${templateSegments(template)
    .map((s) => s ?? '{*}')
    .join('/')}`;
}

/** `realm_access.roles` → `request.auth.claims[realm_access][roles]`. */
export function istioClaimKey(path: string): string {
  return `request.auth.claims${path
    .split('.')
    .map((k) => `[${k}]`)
    .join('')}`;
}

/** What every builder below reads: the model (namespace applied), the options, the selector. */
interface IstioCtx {
  model: ValidModel;
  region: string | undefined;
  selector: (workload: string) => WorkloadSelector;
}

/**
 * Mesh-wide and per-namespace mTLS, and per namespace an "allow-nothing" policy: an ALLOW policy
 * without rules matches nothing, so everything not allowed by another policy is denied (Istio: no
 * ALLOW policy at all would mean allow).
 */
function meshDefaults(c: IstioCtx, root: string): IstioResource[] {
  const { model, region } = c;
  const out: IstioResource[] = [
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta('default', root, region),
      spec: { mtls: { mode: model.mtls.mode } },
    },
  ];
  const namespaces = [
    ...new Set(Object.keys(model.workloads).map((w) => namespaceOf(model, w))),
  ].sort();
  for (const ns of namespaces)
    out.push(
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: meta('default', ns, region),
        spec: { mtls: { mode: model.mtls.mode } },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: meta('allow-nothing', ns, region),
        spec: {},
      },
    );
  return out;
}

/** The RequestAuthentication of a workload whose routes name providers, if any do. */
function requestAuthentication(c: IstioCtx, name: string): RequestAuthentication | undefined {
  const { model } = c;
  const routes = routesOf(model, name);
  const providers = [...new Set(routes.map(([, r]) => r.auth?.provider ?? ''))].filter(
    (p) => p !== '',
  );
  if (providers.length === 0) return undefined;
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: meta(name, namespaceOf(model, name), c.region),
    spec: {
      selector: c.selector(name),
      jwtRules: providers.map((p) => {
        const idp = own(model.identityProviders, p);
        if (!idp) throw new Error(`unknown provider ${p}`);
        return {
          issuer: idp.issuer,
          audiences: [...idp.audiences],
          jwksUri: idp.jwksUri,
          // The services take the caller from this header and answer 401 without it.
          outputPayloadToHeader: identityHeaders.jwtPayload,
          forwardOriginalToken: true,
        };
      }),
    },
  };
}

/** The rule of a route with `auth`: its port, method and path, and the token's issuer, scopes, claims. */
function routeRule(
  model: ValidModel,
  from: IstioRule['from'],
  port: number,
  r: Route,
): IstioRule | undefined {
  const auth = r.auth;
  const idp = auth ? own(model.identityProviders, auth.provider) : undefined;
  if (!auth || !idp) return undefined;
  const when: IstioCondition[] = [{ key: istioClaimKey('iss'), values: [idp.issuer] }];
  // One condition per scope: conditions are ANDed, values within one are ORed.
  for (const s of auth.scopes) when.push({ key: istioClaimKey(idp.scopeClaim), values: [s] });
  for (const [claim, values] of Object.entries(auth.claims))
    when.push({ key: istioClaimKey(claim), values: [...values] });
  return {
    from,
    to: [{ operation: { ports: [String(port)], methods: [r.method], paths: [istioPath(r.path)] } }],
    when,
  };
}

/** The ALLOW policy of a workload: its callers, per port (any path) or per route (with the token). */
function authorizationPolicy(
  c: IstioCtx,
  name: string,
  w: Workload,
): AuthorizationPolicy | undefined {
  const { model } = c;
  const principals = callersOf(model, name).map((x) => istioPrincipal(spiffeId(model, x)));
  if (principals.length === 0) return undefined; // nobody calls it: allow-nothing already denies all
  const from = [{ source: { principals } }];
  const rules: IstioRule[] = [];
  for (const port of w.ports) {
    const portRoutes = routesOf(model, name, port.name);
    if (portRoutes.length === 0)
      rules.push({ from, to: [{ operation: { ports: [String(port.port)] } }] });
    for (const [, r] of portRoutes) {
      const rule = routeRule(model, from, port.port, r);
      if (rule) rules.push(rule);
    }
  }
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: meta(name, namespaceOf(model, name), c.region),
    spec: { selector: c.selector(name), action: 'ALLOW', rules },
  };
}

/** The objects of one workload: its own mTLS mode, RequestAuthentication, AuthorizationPolicy. */
function workloadPolicies(c: IstioCtx, name: string, w: Workload): IstioResource[] {
  const out: IstioResource[] = [];
  if (w.mtls && w.mtls.mode !== c.model.mtls.mode)
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta(name, namespaceOf(c.model, name), c.region),
      spec: { selector: c.selector(name), mtls: { mode: w.mtls.mode } },
    });
  // The edge's inbound ports face the outside and are served by the Gateway, not by mesh policy.
  if (w.edge) return out;
  const ra = requestAuthentication(c, name);
  if (ra) out.push(ra);
  const ap = authorizationPolicy(c, name, w);
  if (ap) out.push(ap);
  return out;
}

/** Compiles the model to Istio security objects. Default deny is always emitted. */
export function compileIstio(input: BoundModel, opts: IstioOptions = {}): IstioResource[] {
  checkRegion(input, opts.region);
  const model = withNamespace(input, opts.namespace);
  const root = opts.rootNamespace ?? defaults.rootNamespace;
  const label = opts.selectorLabel ?? defaults.selectorLabel;
  const c: IstioCtx = {
    model,
    region: opts.region,
    selector: (w) => ({ matchLabels: { [label]: w } }),
  };
  return [
    ...meshDefaults(c, root),
    ...Object.entries(model.workloads).flatMap(([name, w]) => workloadPolicies(c, name, w)),
  ];
}
