/**
 * Istio: PeerAuthentication (STRICT mesh-wide and per namespace), RequestAuthentication per workload that
 * serves routes, and AuthorizationPolicy (an allow-nothing default deny per namespace, plus one ALLOW
 * policy per workload). API: security.istio.io/v1 (Istio ≥ 1.22), fields as in
 * https://istio.io/latest/docs/reference/config/security/authorization-policy/,
 * https://istio.io/latest/docs/reference/config/security/request_authentication/ and
 * https://istio.io/latest/docs/reference/config/security/peer_authentication/.
 */
import { labelKeys, systemNamespaces } from '@trellis/contracts';
import { own } from '../identity.ts';
import { callersOf, namespaceOf, routesOf, spiffeId } from '../identity.ts';
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

/** Compiles the model to Istio security objects. Default deny is always emitted. */
export function compileIstio(input: ValidModel, opts: IstioOptions = {}): IstioResource[] {
  checkRegion(input, opts.region);
  const model = withNamespace(input, opts.namespace);
  const root = opts.rootNamespace ?? defaults.rootNamespace;
  const label = opts.selectorLabel ?? defaults.selectorLabel;
  const selector = (w: string): WorkloadSelector => ({ matchLabels: { [label]: w } });
  const out: IstioResource[] = [];

  out.push({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: meta('default', root, opts.region),
    spec: { mtls: { mode: model.mtls.mode } },
  });
  const namespaces = [
    ...new Set(Object.keys(model.workloads).map((w) => namespaceOf(model, w))),
  ].sort();
  for (const ns of namespaces) {
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta('default', ns, opts.region),
      spec: { mtls: { mode: model.mtls.mode } },
    });
    // "allow-nothing": an ALLOW policy without rules matches nothing, so everything not allowed by
    // another policy is denied (Istio: no ALLOW policy at all would mean allow).
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta('allow-nothing', ns, opts.region),
      spec: {},
    });
  }

  for (const [name, w] of Object.entries(model.workloads)) {
    const ns = namespaceOf(model, name);
    if (w.mtls && w.mtls.mode !== model.mtls.mode)
      out.push({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: meta(name, ns, opts.region),
        spec: { selector: selector(name), mtls: { mode: w.mtls.mode } },
      });
    // The edge's inbound ports face the outside and are served by the Gateway, not by mesh policy.
    if (w.edge) continue;

    const routes = routesOf(model, name);
    const providers = [...new Set(routes.map(([, r]) => r.auth?.provider ?? ''))].filter(
      (p) => p !== '',
    );
    if (providers.length > 0)
      out.push({
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: meta(name, ns, opts.region),
        spec: {
          selector: selector(name),
          jwtRules: providers.map((p) => {
            const idp = own(model.identityProviders, p);
            if (!idp) throw new Error(`unknown provider ${p}`);
            return {
              issuer: idp.issuer,
              audiences: [...idp.audiences],
              jwksUri: idp.jwksUri,
              forwardOriginalToken: true,
            };
          }),
        },
      });

    const principals = callersOf(model, name).map((c) => istioPrincipal(spiffeId(model, c)));
    if (principals.length === 0) continue; // nobody calls it: allow-nothing already denies all
    const from = [{ source: { principals } }];
    const rules: IstioRule[] = [];
    for (const port of w.ports) {
      const portRoutes = routesOf(model, name, port.name);
      if (portRoutes.length === 0) {
        rules.push({ from, to: [{ operation: { ports: [String(port.port)] } }] });
        continue;
      }
      for (const [, r] of portRoutes) {
        const auth = r.auth;
        const idp = auth ? own(model.identityProviders, auth.provider) : undefined;
        if (!auth || !idp) continue;
        const when: IstioCondition[] = [{ key: istioClaimKey('iss'), values: [idp.issuer] }];
        // One condition per scope: conditions are ANDed, values within one are ORed.
        for (const s of auth.scopes) when.push({ key: istioClaimKey(idp.scopeClaim), values: [s] });
        for (const [claim, values] of Object.entries(auth.claims))
          when.push({ key: istioClaimKey(claim), values: [...values] });
        rules.push({
          from,
          to: [
            {
              operation: {
                ports: [String(port.port)],
                methods: [r.method],
                paths: [istioPath(r.path)],
              },
            },
          ],
          when,
        });
      }
    }
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta(name, ns, opts.region),
      spec: { selector: selector(name), action: 'ALLOW', rules },
    });
  }
  return out;
}
