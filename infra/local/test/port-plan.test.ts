// Pins the local stack's plan for trellis.yaml: every port, address, issuer and sidecar option the
// program hands its components, for the `local` (8000) and `e2e` (28000) bases. The fixture was
// written by the code before `bind` existed; `./trellis up` over an existing stack reports no changes
// only while this holds. Never regenerate it to make a change pass: a difference here moves a port.
// Changed once on purpose (issue 11, Keycloak over TLS): the issuer and JWKS URI became https, each
// sidecar's JWKS endpoint gained `tls` and its own bundle as `caFile`, and orders-api's Envoy hash
// moved with them; every port stayed.
// Added on purpose (issue 11, every workload a pod, the default): the plan with pods at both bases,
// `pods-<base>`, written by the code; it differs from the plan without pods (which stays pinned as
// it was, since `trellis-local:pods false` must move nothing) in addresses and Envoy hashes only,
// which the last test checks: every port is the same. Rewritten once on purpose in the same issue,
// when Cassandra, Kafka and Keycloak became server pods: the pod sidecars' upstreams moved from the
// host's end (.1) to the server pods' addresses (.22, .23, .24); every port stayed.
// Changed once on purpose (issue 15, SLO rules): the ingress sidecar's budgeted edge routes gained
// `stat_prefix` (per-route stats the SLO rules read), so its Envoy hash moved; nothing else did.
// Added to on purpose (issue 15, Prometheus with its own identity, ADR 0020): the ports
// `prometheus` (base + 90) and `sidecarMetricsFrom` (base + 550), each sidecar's `metrics` option
// (its metrics listener, on the pod's address with pods) and so every Envoy hash; no port moved.
// Changed once on purpose (issue 14 item 4, ADR 0019): every bootstrap gained the idle settings and
// the jwt cache, so the three Envoy hashes moved at every base, with and without pods (only
// `envoyHashes` was rewritten); every port and address stayed.
// Added to on purpose (issue 16, the batch writer orders-writer, 8082): its block at every base,
// with and without pods (sidecar, Envoy hash, two egress listeners, its Kafka client listener
// base + 304, app port base + 830, pod slot 3 at .5, its service env), written by planAt; every
// existing port, address and hash stayed (checked key by key against the previous fixture).
// Added to on purpose (issue 15, the data nodes' metrics wired into the stack, ADR 0020): the ports
// `serverMetricsFrom` (base + 560), `serverMetricsAdminFrom` (base + 570) and `jmxExporterFrom`
// (base + 580), `dataMetrics` (each node's front, its admin and its agent: Cassandra + 0, Kafka
// + 1; the front on the server pod's address with pods), the fronts' Envoy hashes
// (`cassandra-metrics`, `kafka-metrics`) and `scrape` (Prometheus's jobs and targets), written by
// planAt; every existing port, address and hash stayed (checked key by key against the previous
// fixture).
// Added to on purpose (issue 15 item 2, traces, ADR 0023): the ports `traceCollector`…`jaegerQueryGrpc`
// (base + 420…425) and `telemetryEgressFrom` (base + 450), each sidecar's `tracing` option (the
// collector's front: 127.0.0.1, or the host's end .1 with pods; the telemetry egress base + 450 + i
// for the three apps), `tracing` (the binding: the collector's and Jaeger's identities, SVID dirs and
// listeners), the front's Envoy hash (`otel-collector-front`), and so the four sidecar hashes, written
// by planAt; every existing port and address stayed (checked key by key against the previous fixture).
// Added to on purpose (issue 15 item 2, the services' traces): each service's env gained
// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (its sidecar's telemetry egress, base + 450 + i) and
// `OTEL_SERVICE_NAME`, now that the services' env schemas declare them (tracingEnv gives them only
// then); nothing else changed (only those keys were added to the fixture).
// Added to on purpose (issue 15, Keycloak's metrics, ADR 0024): Keycloak's front in `dataMetrics`
// (base + 562, its admin base + 572, reading the management port base + 190; on Keycloak's pod
// address with pods), its Envoy hash (`keycloak-metrics`) and the job `keycloak` in `scrape`,
// written by planAt; every existing port, address and hash stayed (checked key by key).
// Changed on purpose (issue 15 item 1, both services scraped): ledger and orders-writer declare
// `metrics: { port: http, path: /metrics }`, so their sidecars' metrics listeners route that path
// (their two Envoy hashes moved at every base, with and without pods) and `scrape` gained the jobs
// `app-ledger` and `app-orders-writer` (on their sidecars' metrics listeners, base + 551 and + 553);
// every port and address stayed and nothing else changed (checked key by key).
// Added to on purpose (issue 15, nginx's metrics): nginx's front in `dataMetrics` (base + 563, its
// admin base + 573, reading nginx's metrics server base + 583 on the edge's loopback; on the edge
// pod's address with pods), its Envoy hash (`nginx-metrics`) and the job `nginx` in `scrape`,
// written by planAt; every existing port, address and hash stayed (checked key by key).
import { svidFiles } from '@trellis/contracts';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataMetricsFrontArtefacts } from '@trellis/components/local/data-metrics';
import { collectorFrontArtefacts } from '@trellis/components/local/otel-collector';
import { prometheusFiles } from '@trellis/components/local/prometheus';
import { sidecarArtefacts } from '@trellis/components/local/sidecar';
import { bindOrThrow, localPortsAt, parseModel, type ValidModel } from '@trellis/policy';
import { localEnvironment, podPlan } from '../src/context.ts';
import { planDataPorts } from '../src/data.ts';
import { planDataMetrics, planKeycloakMetrics, planNginxMetrics } from '../src/data-metrics.ts';
import { servedProvider } from '../src/identity.ts';
import { sidecarPlan } from '../src/mesh.ts';
import { serviceEnv } from '../src/service-env.ts';

const pinned = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures/local-plan.json'), 'utf8'),
) as Record<string, Record<string, unknown>>;

function repoModel(edit?: (m: { workloads: Record<string, { calls: string[] }> }) => void) {
  const r = parseModel(readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  if (!edit) return r.model;
  const data = structuredClone(r.model) as unknown as {
    workloads: Record<string, { calls: string[] }>;
  };
  edit(data);
  const v = parseModel(JSON.stringify(data));
  if (!v.ok) throw new Error('variant is invalid');
  return v.model;
}

const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

/**
 * Everything the local program derives from the model at `base` (stack dir `/stack`), with every
 * workload in a pod (the default) or none.
 */
function planAt(model: ValidModel, base: number, pods = false) {
  const ports = localPortsAt(base);
  const env = localEnvironment(base, '/stack', pods ? podPlan(model, base).env : undefined);
  const bound = bindOrThrow(model, env, 'bind');
  const data = planDataPorts(bound);
  const provider = servedProvider(bound).name;
  const edge = bound.binding.edge?.workload ?? '';
  const sidecars: Record<string, unknown> = {};
  const envoyHashes: Record<string, string> = {};
  for (const w of Object.keys(bound.workloads).sort()) {
    const { certDir, dir, ...opts } = sidecarPlan(bound, w);
    sidecars[w] = opts;
    const svid = {
      cert: `${certDir}/${svidFiles.cert}`,
      key: `${certDir}/${svidFiles.key}`,
      bundle: `${certDir}/${svidFiles.bundle}`,
    };
    // The SDS files name the SVID paths and sit in the sidecar's dir: the hash pins both.
    envoyHashes[w] = sha(sidecarArtefacts(bound, { ...opts, nodeId: `${w}-sidecar` }, dir, svid));
  }
  // The data nodes' metrics fronts (ADR 0020): where each listens, its admin, its node's agent.
  // Keycloak's front (ADR 0024) reads its management interface: slot 2, in Keycloak's pod.
  const kc = planKeycloakMetrics(bound, ports, env.pods?.servers?.keycloak);
  // nginx's front (slot 3) reads nginx's metrics server on the edge pod's loopback, in that pod.
  const ngx = planNginxMetrics(
    bound,
    ports,
    pods ? bound.binding.edge?.listen?.address : undefined,
  );
  const dataMetrics = [
    ...planDataMetrics(bound, ports, env.pods?.servers),
    ...(kc !== undefined ? [kc] : []),
    ...(ngx !== undefined ? [ngx] : []),
  ];
  for (const p of dataMetrics) {
    const certDir = `/stack/pki/${p.service}-metrics`;
    envoyHashes[`${p.service}-metrics`] = sha(
      dataMetricsFrontArtefacts(bound, p.service, p, `/stack/run/${p.service}-metrics`, {
        cert: `${certDir}/${svidFiles.cert}`,
        key: `${certDir}/${svidFiles.key}`,
        bundle: `${certDir}/${svidFiles.bundle}`,
      }),
    );
  }
  // The trace collector's front (ADR 0023), with the collector's SVID.
  const collectorDir = bound.binding.tracing?.collector?.svid;
  if (collectorDir?.kind === 'files')
    envoyHashes['otel-collector-front'] = sha(
      collectorFrontArtefacts(bound, '/stack/run/otel-collector/front', {
        cert: collectorDir.cert,
        key: collectorDir.key,
        bundle: collectorDir.bundle,
      }),
    );
  // What Prometheus scrapes: each job's targets, as endpoints, and the name it checks.
  const scrape = prometheusFiles(
    bound,
    '15s',
    Object.fromEntries(dataMetrics.map((p) => [p.service, p.listen])),
  ).scrape.scrape_configs.map((j) => ({
    job: j.job_name,
    serverName: j.tls_config?.server_name ?? null,
    targets: j.static_configs.flatMap((c) =>
      c.targets.map((t) => {
        const i = t.lastIndexOf(':');
        return { address: t.slice(0, i), port: Number(t.slice(i + 1)) };
      }),
    ),
  }));
  const idp = bound.identityProviders[provider];
  const cassandra = {
    host: '127.0.0.1',
    port: ports.cassandraNative,
    spiffeId: '',
    localDataCenter: 'datacenter1',
  };
  return {
    ports,
    kafkaDirect: bound.binding.dataServices.kafka?.endpoint.port,
    issuer: idp?.issuer,
    jwksUri: idp?.jwksUri,
    edge,
    ingress: {
      listen: bound.binding.edge?.listen,
      upstream: Object.values(bound.binding.workloads[edge]?.inbound ?? {})[0],
    },
    sidecars,
    envoyHashes,
    egress: data.egress,
    kafkaListeners: data.kafkaListeners,
    dataMetrics,
    scrape,
    tracing: bound.binding.tracing,
    serviceEnv: Object.fromEntries(
      ['ledger', 'orders-api', 'orders-writer'].map((w) => [
        w,
        serviceEnv(bound, w, { egress: data.egress, cassandra }),
      ]),
    ),
    appPorts: Object.fromEntries(
      Object.entries(bound.binding.workloads).map(([w, b]) => [
        w,
        Object.values(b.app)[0]?.port ?? null,
      ]),
    ),
  };
}

describe('the local plan of trellis.yaml (pinned)', () => {
  it.each([8000, 28000])('is unchanged at base %i', (base) => {
    expect(planAt(repoModel(), base)).toEqual(pinned[String(base)]);
  });

  it.each([8000, 28000])('is unchanged at base %i with pods', (base) => {
    expect(planAt(repoModel(), base, true)).toEqual(pinned[`pods-${base}`]);
  });

  it('moves no port when the workloads become pods: only addresses and hashes change', () => {
    const portsOf = (v: unknown): unknown =>
      JSON.parse(
        JSON.stringify(v, (k, x: unknown) =>
          ['address', 'host', 'inboundAddress', 'envoyHashes'].includes(k) ? undefined : x,
        ),
      );
    for (const base of [8000, 28000])
      expect(portsOf(planAt(repoModel(), base, true))).toEqual(portsOf(pinned[String(base)]));
    // And the addresses did move: orders-api's inbound is on its pod, its Cassandra at the host end.
    const sidecars = pinned['pods-8000']?.sidecars as Record<string, { outbound: unknown }>;
    expect(sidecars.ingress?.outbound).toEqual({
      'orders-api': { address: '198.18.8.4', port: 8620 },
    });
  });

  it('gives a backend peer call its egress listener after the data services', () => {
    const model = repoModel((m) => m.workloads['orders-api']?.calls.push('ledger'));
    const bound = bindOrThrow(model, localEnvironment(8000, '/stack'), 'bind');
    expect({
      'orders-api': sidecarPlan(bound, 'orders-api').outbound,
      ingress: sidecarPlan(bound, 'ingress').outbound,
    }).toEqual(pinned.peerVariant);
  });
});
