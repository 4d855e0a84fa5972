/**
 * The plan the CLI hands to the k6 script (as a JSON file): k6 options plus what the script needs to
 * build its requests. Types only, shared by Node (`plan.ts`) and the k6 script (`k6/load.ts`), so it
 * must import nothing at run time.
 */
import type { Options } from 'k6/options';

/** The scenarios `./trellis load --scenario` accepts. */
export const scenarioNames = ['smoke', 'steady', 'spike', 'read-heavy', 'write-heavy'] as const;
/** One of {@link scenarioNames}. */
export type ScenarioName = (typeof scenarioNames)[number];

/** How the script builds and checks a route's request; chosen from the route's method and path. */
export type Recipe = 'create-order' | 'get-order';

/** One route under load. */
export interface PlanRoute {
  /** The model's route name: the `route` tag of its requests, which the thresholds filter on. */
  name: string;
  recipe: Recipe;
  method: string;
  /** The model's path template, e.g. `/orders/{id}`. */
  path: string;
}

/** One way to reach the mesh probe's request: the full path, or one with fewer hops. */
export interface MeshPath {
  /** `edge` (nginx → ingress Envoy → sidecar → app), `ingress`, `sidecar` or `direct`. */
  name: MeshPathName;
  /** Base URL, e.g. `http://127.0.0.1:8802`. */
  url: string;
  /**
   * `bearer`: send the token (a sidecar validates it). `payload-header`: send what the sidecar would
   * forward to the app instead (the token's payload segment in `payloadHeader`, and an XFCC header
   * naming the ingress identity), because the app trusts its sidecar to have checked both.
   */
  auth: 'bearer' | 'payload-header';
  /** Extra headers (e.g. XFCC on the direct path). */
  headers?: Record<string, string>;
}

/** The mesh probe's paths, from most hops to fewest. */
export const meshPathNames = ['edge', 'ingress', 'sidecar', 'direct'] as const;
/** One of {@link meshPathNames}. */
export type MeshPathName = (typeof meshPathNames)[number];

/** One Envoy traversal: the difference between two paths that differ by exactly that Envoy. */
export interface MeshHop {
  /** Tag value of `hop` on the overhead metric, e.g. `orders-api-sidecar`. */
  name: string;
  /** The path with the Envoy. */
  outer: MeshPathName;
  /** The same path without it. */
  inner: MeshPathName;
  /** An Envoy traversal (held to the mesh budget), or another hop (nginx) that is only reported. */
  envoy: boolean;
}

/** The per-hop probe: GETs of one order through each path in turn, in a random order per iteration. */
export interface PlanMesh {
  /** The read route whose request the probe sends. */
  route: string;
  paths: MeshPath[];
  hops: MeshHop[];
  /** `payload-header` paths put the token's payload here. @default x-jwt-payload */
  payloadHeader: string;
}

/** The JSON file the k6 script reads (`TRELLIS_LOAD_PLAN`). */
export interface K6Plan {
  version: 1;
  scenario: ScenarioName;
  /** k6 options, used as they are (the script adds `tlsAuth` from the files below). */
  options: Options;
  /** The ingress base URL, e.g. `https://localhost:8443`. */
  baseUrl: string;
  /** The OAuth token endpoint; the form is in the environment (`TRELLIS_TOKEN_FORM`), never here. */
  tokenUrl: string;
  routes: PlanRoute[];
  mesh?: PlanMesh;
  /** A client certificate for the sidecar path (PEM file paths; the script reads them with open()). */
  clientCert?: { domains: string[]; certFile: string; keyFile: string };
  /** Orders created in setup() for the reads. */
  seedOrders: number;
  /** The runner's control endpoint (`/mark/start`, `/mark/end`). */
  controlUrl: string;
}
