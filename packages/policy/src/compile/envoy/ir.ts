/**
 * The intermediate form the HTTP filter builders read (after envoyproxy/gateway's `ir.HTTPListener`):
 * one inbound HTTP listener with what the model says about it, and the builder interface.
 */
import type { Model, Route } from '../../schema.ts';
import type { EnvoyOptions } from '../envoy.ts';
import type {
  EnvoyCluster,
  EnvoyRoute,
  HttpConnectionManager,
  HttpFilter,
} from '../envoy-types.ts';

/** One inbound HTTP listener of a sidecar. */
export interface HttpListenerIr {
  /** Listener name; also the stat prefix and the route configuration's name. */
  name: string;
  /** The model port's name. */
  port: string;
  /** The edge workload's plaintext listener behind nginx (no mTLS, no authentication here). */
  edge: boolean;
  /** The model routes this listener serves, by route name. */
  routes: [string, Route][];
  /** Identity providers of the workload (Istio's RequestAuthentication is per workload, too). */
  providers: string[];
  /** Workloads allowed to call this one. */
  callers: string[];
  model: Model;
  options: EnvoyOptions;
}

/** A model route and the Envoy route compiled from it. */
export interface RoutePair {
  name: string;
  route: Route;
  envoy: EnvoyRoute;
}

/**
 * What one concern contributes to an HTTP listener, as envoyproxy/gateway's `httpFilter` interface
 * (internal/xds/translator/httpfilters.go): HCM fields, per-route configuration, and the clusters it
 * references. Every hook is called for every listener; a builder that has nothing to do returns.
 */
export interface HcmBuilder {
  /** Sets HCM fields (after the filter chain is built). */
  patchHcm?(hcm: HttpConnectionManager, l: HttpListenerIr): void;
  /** Adds per-route configuration to the Envoy route compiled from a model route. */
  patchRoute?(r: RoutePair, l: HttpListenerIr): void;
  /** Adds the clusters this concern references (skipping ones already there). */
  patchResources?(clusters: EnvoyCluster[], l: HttpListenerIr): void;
}

/** An HTTP filter's builder: an `HcmBuilder` that also contributes one filter to the chain. */
export interface HttpFilterBuilder<N extends HttpFilter['name']> extends HcmBuilder {
  readonly name: N;
  /** The filter for this listener, or undefined when it is not needed there. */
  filter(l: HttpListenerIr): Extract<HttpFilter, { name: N }> | undefined;
}

/** The value, or an error naming the missing option. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`compileEnvoy: missing option ${what}`);
  return value;
}
