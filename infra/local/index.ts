/**
 * The local stack: the whole Trellis reference architecture on one machine, as real processes, wired
 * from the policy model. `./trellis up` runs it as `pulumi up --stack local`.
 */
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from './config.ts';
import { localContext } from './src/context.ts';
import { deployData } from './src/data.ts';
import { deployIdentity } from './src/identity.ts';
import { deployMesh } from './src/mesh.ts';
import { deployMetrics } from './src/metrics.ts';
import { deployTracing } from './src/tracing.ts';

const cfg = loadConfig();

const ctx = localContext({
  stack: cfg.stack,
  region: cfg.region,
  model: cfg.model,
  stackDir: cfg.stackDir,
  basePort: cfg.basePort,
  certValidHours: cfg.certValidHours,
  rotation: cfg.rotation,
  pods: cfg.pods,
});
const ca = ctx.ca;

// Order: the data layer and Keycloak start side by side; the sidecars, services and ingress follow.
const data = deployData(ctx);
const idp = deployIdentity(ctx);
// Production's budgets need no setting; another environment's reach both the rules and the edge.
const sloEnvironment = cfg.sloBudgets === 'production' ? {} : { sloEnvironment: cfg.sloBudgets };
const mesh = deployMesh(ctx, data, idp, undefined, {
  faultInjection: cfg.faultInjection,
  edgeRotation: cfg.edgeRotation,
  ...sloEnvironment,
});
const metrics = deployMetrics(ctx, mesh, data, undefined, {
  scrapeInterval: cfg.scrapeInterval,
  sloTimeScale: cfg.sloTimeScale,
  identity: idp,
  ...sloEnvironment,
});
const traces = deployTracing(ctx);

/** `https://localhost:<ingressHttps>`: the front door. */
export const ingressUrl = mesh.ingressUrl;
/** The Mesh CA root: pass it to curl with `--cacert`. */
export const trustBundle = ca.bundleFile;
export const ports = pulumi.output(ctx.ports);
export const sidecars = mesh.sidecars;
export const services = mesh.services;
export const keycloak = {
  issuer: idp.issuer,
  tokenUrl: idp.tokenUrl,
  adminConsoleUrl: idp.adminConsoleUrl,
  healthUrl: idp.healthUrl,
  demo: idp.demo,
};
/**
 * The stack's Prometheus (the model's metrics scraper): its URL on the host's loopback, its SPIFFE ID
 * and its scrape jobs (every sidecar's Envoy stats and the apps' metrics, over mTLS). Absent when the
 * model declares no `metrics.scraper`.
 */
export const prometheus = metrics
  ? {
      url: metrics.url,
      consolesUrl: metrics.consolesUrl,
      spiffeId: metrics.spiffeId,
      jobs: metrics.jobs,
    }
  : undefined;
/**
 * The stack's traces (ADR 0023): Jaeger's query API on the host's loopback, the collector's SPIFFE
 * ID and mTLS front, Jaeger's SPIFFE ID. Absent when the model declares no `tracing`.
 */
export const tracing = traces
  ? {
      jaegerUrl: traces.jaegerUrl,
      collector: traces.collector,
      jaegerSpiffeId: traces.jaegerSpiffeId,
    }
  : undefined;
export const cassandra = data.cassandra;
export const kafka = { bootstrap: data.kafka.bootstrap, spiffeId: data.kafka.spiffeId };
/**
 * The model bound to this stack: its routes and topics, and in `binding` where every listener of
 * every workload is (inbound, app, admin, egress) and where the data services are. The bypass tests
 * probe each of them.
 */
export const model = ctx.model;
/** The stack's pods (address, user, launch) by name; empty when `trellis-local:pods` is off. */
export const pods = ctx.pods?.resource.members ?? {};
/** Secret: what `./trellis token` needs (demo passwords, agent secrets). */
export const principals = idp.principals;
/** Secret: Keycloak's bootstrap admin. */
export const keycloakAdmin = idp.admin;
