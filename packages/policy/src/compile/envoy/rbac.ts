/**
 * RBAC: on every sidecar listener, the caller's SPIFFE principal; on routes with `auth`, also the
 * token's issuer, scopes and claims from jwt_authn's verified payload. A port without routes admits
 * the callers on any path. https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto
 */
import { own, spiffeId } from '../../identity.ts';
import { spaceDelimitedClaims } from '../../request.ts';
import type { Model, Route } from '../../schema.ts';
import type { RbacPermission, RbacPolicy, RbacPrincipal, StringMatcher } from '../envoy-types.ts';
import type { HttpFilterBuilder, HttpListenerIr } from './ir.ts';
import { jwtMetadataFilter } from './jwt.ts';
import { pathMatcher, reEscape } from './match.ts';

/** A metadata principal on the verified JWT payload of `provider`, with any value matcher. */
function payloadPrincipal(
  provider: string,
  claim: string,
  value: Extract<
    RbacPrincipal,
    { sourced_metadata: unknown }
  >['sourced_metadata']['metadata_matcher']['value'],
): RbacPrincipal {
  return {
    sourced_metadata: {
      metadata_matcher: {
        filter: jwtMetadataFilter,
        path: [{ key: provider }, ...claim.split('.').map((key) => ({ key }))],
        value,
      },
    },
  };
}

/** The claim carries `value`: as a list element, or (string claim) whole, or space-separated for scope. */
function claimHas(provider: string, claim: string, value: string): RbacPrincipal {
  const asString: StringMatcher = (spaceDelimitedClaims as readonly string[]).includes(claim)
    ? { safe_regex: { regex: `^(.* )?${reEscape(value)}( .*)?$` } }
    : { exact: value };
  return {
    or_ids: {
      ids: [
        payloadPrincipal(provider, claim, { string_match: asString }),
        payloadPrincipal(provider, claim, {
          list_match: { one_of: { string_match: { exact: value } } },
        }),
      ],
    },
  };
}

/** Any of the callers, by the SPIFFE ID in their client certificate. */
export function peersPrincipal(model: Model, callers: string[]): RbacPrincipal {
  return {
    or_ids: {
      ids: callers.map((c) => ({
        authenticated: { principal_name: { exact: spiffeId(model, c) } },
      })),
    },
  };
}

/** The policy of a route with `auth`: its method and path, for a caller with a token that fits. */
function routePolicy(model: Model, callers: string[], r: Route): RbacPolicy | undefined {
  const auth = r.auth;
  const idp = auth ? own(model.identityProviders, auth.provider) : undefined;
  if (!auth || !idp) return undefined;
  const ids: RbacPrincipal[] = [
    peersPrincipal(model, callers),
    payloadPrincipal(auth.provider, 'iss', { string_match: { exact: idp.issuer } }),
    ...auth.scopes.map((s) => claimHas(auth.provider, idp.scopeClaim, s)),
    ...Object.entries(auth.claims).map(([claim, values]): RbacPrincipal => ({
      or_ids: { ids: values.map((v) => claimHas(auth.provider, claim, v)) },
    })),
  ];
  const permission: RbacPermission = {
    and_rules: {
      rules: [
        { header: { name: ':method', string_match: { exact: r.method } } },
        { url_path: { path: pathMatcher(r.path) } },
      ],
    },
  };
  return { permissions: [permission], principals: [{ and_ids: { ids } }] };
}

/** The callers on any path: the policy of a port without routes (and of a TCP port). */
export function peersOnly(model: Model, callers: string[]): RbacPolicy {
  return { permissions: [{ any: true }], principals: [peersPrincipal(model, callers)] };
}

/**
 * The ALLOW policies of a listener on `port`. No callers: no policy, so RBAC denies everything
 * (nobody may reach the workload, whatever token they hold).
 */
function policies(l: HttpListenerIr, port: string): Record<string, RbacPolicy> {
  const out: Record<string, RbacPolicy> = {};
  if (l.callers.length === 0) return out;
  if (l.routes.length === 0) out[`peers_${port}`] = peersOnly(l.model, l.callers);
  for (const [rname, r] of l.routes) {
    const p = routePolicy(l.model, l.callers, r);
    if (p) out[`route_${rname}`] = p;
  }
  return out;
}

/** The RBAC builder: on every sidecar listener, even one with no policy (then it denies all). */
export const rbac: HttpFilterBuilder<'envoy.filters.http.rbac'> = {
  name: 'envoy.filters.http.rbac',
  filter(l) {
    if (l.edge) return undefined;
    return {
      name: 'envoy.filters.http.rbac',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        rules: { action: 'ALLOW', policies: policies(l, l.port) },
      },
    };
  },
};
