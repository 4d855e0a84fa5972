/**
 * Gateway API (gateway.networking.k8s.io/v1): one Gateway with an HTTPS listener per host, and one
 * HTTPRoute per model route. Fields: https://gateway-api.sigs.k8s.io/reference/spec/. Path templates have
 * no Gateway API equivalent, so `/orders/{id}` routes as PathPrefix `/orders/` (element-wise prefix
 * match) with the method: the mesh policy at the backend still enforces the exact template.
 */
import { own } from '../identity.ts';
import type { HttpMethod } from '../schema.ts';
import type { BoundModel } from '../bind/types.ts';
import { checkRegion, meta, templateSegments, withNamespace } from './common.ts';
import type { ObjectMeta } from './common.ts';
import { namespaceOf } from '../identity.ts';

/** A Gateway listener. */
export interface GatewayListener {
  name: string;
  hostname: string;
  port: number;
  protocol: 'HTTPS';
  tls: { mode: 'Terminate'; certificateRefs: { kind: 'Secret'; name: string }[] };
  allowedRoutes: { namespaces: { from: 'Same' | 'All' } };
}

/** gateway.networking.k8s.io/v1 Gateway. */
export interface Gateway {
  apiVersion: 'gateway.networking.k8s.io/v1';
  kind: 'Gateway';
  metadata: ObjectMeta;
  spec: { gatewayClassName: string; listeners: GatewayListener[] };
}

/** An HTTPRoute match. */
export interface HttpRouteMatch {
  path: { type: 'Exact' | 'PathPrefix'; value: string };
  method: HttpMethod;
}

/** gateway.networking.k8s.io/v1 HTTPRoute. */
export interface HttpRoute {
  apiVersion: 'gateway.networking.k8s.io/v1';
  kind: 'HTTPRoute';
  metadata: ObjectMeta;
  spec: {
    parentRefs: { name: string; namespace: string }[];
    hostnames: string[];
    rules: {
      matches: HttpRouteMatch[];
      backendRefs: { name: string; namespace?: string; port: number }[];
    }[];
  };
}

/** Options of `compileGatewayApi`. */
export interface GatewayOptions {
  /** Namespace of the Gateway and of workloads without one. @default the model's namespace */
  namespace?: string;
  region?: string;
  /** @default 'nginx' (NGINX Gateway Fabric) */
  gatewayClassName?: string;
  /** @default 'trellis' */
  gatewayName?: string;
  /** TLS Secret with the edge certificate, in the Gateway's namespace. @default 'trellis-edge-tls' */
  tlsSecretName?: string;
  /** @default 443 */
  port?: number;
}

/** The path match for a route template. */
export function gatewayPath(template: string): HttpRouteMatch['path'] {
  const segs = templateSegments(template);
  const first = segs.indexOf(null);
  if (first === -1) return { type: 'Exact', value: template };
  return { type: 'PathPrefix', value: `/${segs.slice(0, first).join('/')}` };
}

/** Compiles the edge routes to a Gateway and HTTPRoutes. */
export function compileGatewayApi(
  input: BoundModel,
  opts: GatewayOptions = {},
): (Gateway | HttpRoute)[] {
  checkRegion(input, opts.region);
  const model = withNamespace(input, opts.namespace);
  const ns = model.namespace;
  const gw = opts.gatewayName ?? 'trellis';
  const hosts = [...new Set(Object.values(model.routes).flatMap((r) => r.hosts))].sort();
  const gateway: Gateway = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: meta(gw, ns, opts.region),
    spec: {
      gatewayClassName: opts.gatewayClassName ?? 'nginx',
      listeners: hosts.map((h, i) => ({
        name: `https-${i}`,
        hostname: h,
        port: opts.port ?? 443,
        protocol: 'HTTPS',
        tls: {
          mode: 'Terminate',
          certificateRefs: [{ kind: 'Secret', name: opts.tlsSecretName ?? 'trellis-edge-tls' }],
        },
        allowedRoutes: { namespaces: { from: 'Same' } },
      })),
    },
  };
  const routes = Object.entries(model.routes).map(([name, r]): HttpRoute => {
    const port = own(model.workloads, r.backend)?.ports.find((p) => p.name === r.port)?.port ?? 0;
    const backendNs = namespaceOf(model, r.backend);
    return {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: meta(name, ns, opts.region),
      spec: {
        parentRefs: [{ name: gw, namespace: ns }],
        hostnames: [...r.hosts],
        rules: [
          {
            matches: [{ path: gatewayPath(r.path), method: r.method }],
            // A backend in another namespace also needs a ReferenceGrant there.
            backendRefs: [
              { name: r.backend, ...(backendNs !== ns ? { namespace: backendNs } : {}), port },
            ],
          },
        ],
      },
    };
  });
  // A Gateway needs at least one listener: no routes, no edge objects.
  return routes.length === 0 ? [] : [gateway, ...routes];
}
