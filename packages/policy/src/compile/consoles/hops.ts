/**
 * The hop consoles (see ../consoles.ts): what each scraped hop's console shows, as tables and
 * graphs of the series its job exports. {@link consoleSourceMetrics} lists every series read, by
 * source; the component tests show them on real Envoys, Cassandra, Kafka and Keycloak.
 */
import type { BoundModel } from '../../bind/types.ts';
import type { MetricsServer } from '../../identity.ts';
import { scrapeJobs } from '../prometheus.ts';
import { sel, type Graph, type Hop, type Row } from './html.ts';

/** Series the hop consoles read from the scrape jobs, by source. */
export const consoleSourceMetrics = {
  envoy: [
    'envoy_http_downstream_rq_total',
    'envoy_http_downstream_rq_xx',
    'envoy_http_downstream_rq_time_bucket',
    'envoy_cluster_upstream_rq_total',
    'envoy_cluster_upstream_cx_total',
    'envoy_cluster_upstream_cx_connect_fail',
    'envoy_server_memory_allocated',
  ],
  cassandra: [
    'cassandra_client_requests_total',
    'cassandra_client_request_latency_seconds',
    'jvm_memory_used_bytes',
  ],
  kafka: [
    'kafka_network_requests_total',
    'kafka_network_request_total_time_ms',
    'kafka_server_messages_in_total',
    'kafka_server_under_replicated_partitions',
    'jvm_memory_used_bytes',
  ],
  keycloak: [
    'keycloak_user_events_total',
    'http_server_requests_seconds_count',
    'jvm_memory_used_bytes',
  ],
} as const;

const rate = (selector: string) => `sum(rate(${selector}[5m]))`;
const p99Of = (bucket: string) => `histogram_quantile(0.99, sum by (le) (rate(${bucket}[5m])))`;

function sidecarRows(job: string, http: Record<string, string>): Row[] {
  const rq = (cls: string) =>
    rate(sel('envoy_http_downstream_rq_xx', { ...http, envoy_response_code_class: cls }));
  return [
    { label: 'scrape up', expr: sel('up', { job }) },
    {
      label: 'requests in (5m)',
      expr: rate(sel('envoy_http_downstream_rq_total', http)),
      suffix: ' req/s',
    },
    { label: '4xx (5m): refused by JWT, RBAC or the route', expr: rq('4'), suffix: ' req/s' },
    { label: '5xx (5m)', expr: rq('5'), suffix: ' req/s' },
    {
      label: 'p99 through the sidecar (5m)',
      expr: p99Of(sel('envoy_http_downstream_rq_time_bucket', http)),
      suffix: ' ms',
      note: 'production budget per traversal: p99 ≤ 1 ms (docs/performance.md)',
    },
    {
      label: 'connect failures upstream (5m)',
      expr: rate(sel('envoy_cluster_upstream_cx_connect_fail', { job })),
      suffix: ' /s',
    },
    {
      label: 'memory allocated',
      expr: sel('envoy_server_memory_allocated', { job }),
      suffix: 'B',
      format: 'humanize1024',
    },
  ];
}

function sidecarGraphs(job: string, http: Record<string, string>): Graph[] {
  const byCluster = (m: string) => `sum by (envoy_cluster_name) (rate(${sel(m, { job })}[5m]))`;
  return [
    {
      title: 'Requests in, by response class',
      exprs: [
        `sum by (envoy_response_code_class) (rate(${sel('envoy_http_downstream_rq_xx', http)}[5m]))`,
      ],
      names: ['[[envoy_response_code_class]]xx'],
      yUnits: 'req/s',
      min: 0,
    },
    {
      title: 'p99 through the sidecar',
      exprs: [p99Of(sel('envoy_http_downstream_rq_time_bucket', http))],
      names: ['p99'],
      yUnits: 'ms',
      min: 0,
    },
    {
      title: 'Upstream requests and connections, by cluster',
      exprs: [
        byCluster('envoy_cluster_upstream_rq_total'),
        byCluster('envoy_cluster_upstream_cx_total'),
      ],
      names: ['[[envoy_cluster_name]] requests', '[[envoy_cluster_name]] connections'],
      yUnits: '/s',
      min: 0,
    },
  ];
}

/** The console of workload `w`'s sidecar: its Envoy's statistics (job `envoy-<w>`). */
export function sidecarHop(model: BoundModel, w: string): Hop {
  const job = scrapeJobs.envoy(w);
  // The metrics listener's own requests (the scrapes) are left out of the traffic.
  const http = { job, envoy_http_conn_manager_prefix: '!metrics' };
  const edge = model.workloads[w]?.edge === true;
  return {
    name: w,
    job,
    title: `Hop: ${w}'s sidecar${edge ? ' (the edge, behind nginx)' : ''}`,
    rows: sidecarRows(job, http),
    graphs: sidecarGraphs(job, http),
  };
}

function heap(job: string): { row: Row; graph: Graph } {
  const expr = `sum(${sel('jvm_memory_used_bytes', { job, area: 'heap' })})`;
  return {
    row: { label: 'JVM heap used', expr, suffix: 'B', format: 'humanize1024' },
    graph: { title: 'JVM heap used', exprs: [expr], names: ['heap'], yUnits: 'B', min: 0 },
  };
}

function cassandraHop(job: string): Hop {
  const requests = (scope: string) => rate(sel('cassandra_client_requests_total', { job, scope }));
  const h = heap(job);
  return {
    name: 'cassandra',
    job,
    title: 'Hop: Cassandra',
    rows: [
      { label: 'scrape up', expr: sel('up', { job }) },
      { label: 'reads (5m)', expr: requests('Read'), suffix: ' /s' },
      { label: 'writes (5m)', expr: requests('Write'), suffix: ' /s' },
      {
        label: 'write p99 (the node’s recent window)',
        expr: `max(${sel('cassandra_client_request_latency_seconds', { job, scope: 'Write', quantile: '0.99' })}) * 1000`,
        suffix: ' ms',
      },
      h.row,
    ],
    graphs: [
      {
        title: 'Client requests, by kind',
        exprs: [`sum by (scope) (rate(${sel('cassandra_client_requests_total', { job })}[5m]))`],
        names: ['[[scope]]'],
        yUnits: '/s',
        min: 0,
      },
      h.graph,
    ],
  };
}

function kafkaHop(job: string): Hop {
  const h = heap(job);
  return {
    name: 'kafka',
    job,
    title: 'Hop: Kafka',
    rows: [
      { label: 'scrape up', expr: sel('up', { job }) },
      {
        label: 'records in (5m)',
        expr: rate(sel('kafka_server_messages_in_total', { job })),
        suffix: ' /s',
      },
      {
        label: 'produce requests (5m)',
        expr: rate(sel('kafka_network_requests_total', { job, request: 'Produce' })),
        suffix: ' /s',
      },
      {
        label: 'produce p99 (the broker’s recent window)',
        expr: `max(${sel('kafka_network_request_total_time_ms', { job, request: 'Produce', quantile: '0.99' })})`,
        suffix: ' ms',
      },
      {
        label: 'under-replicated partitions',
        expr: `max(${sel('kafka_server_under_replicated_partitions', { job })})`,
        note: '0 when healthy',
      },
      h.row,
    ],
    graphs: [
      {
        title: 'Requests, by kind',
        exprs: [`sum by (request) (rate(${sel('kafka_network_requests_total', { job })}[5m]))`],
        names: ['[[request]]'],
        yUnits: '/s',
        min: 0,
      },
      h.graph,
    ],
  };
}

function keycloakHop(job: string): Hop {
  const events = (labels: Record<string, string>) =>
    rate(sel('keycloak_user_events_total', { job, ...labels }));
  const h = heap(job);
  return {
    name: 'keycloak',
    job,
    title: 'Hop: Keycloak (the identity provider)',
    rows: [
      { label: 'scrape up', expr: sel('up', { job }) },
      { label: 'logins (5m)', expr: events({ event: 'login', error: '' }), suffix: ' /s' },
      {
        label: 'token grants to clients (5m)',
        expr: events({ event: 'client_login', error: '' }),
        suffix: ' /s',
      },
      { label: 'failed events (5m)', expr: events({ error: '!' }), suffix: ' /s' },
      {
        label: 'HTTP requests (5m)',
        expr: rate(sel('http_server_requests_seconds_count', { job })),
        suffix: ' req/s',
      },
      h.row,
    ],
    graphs: [
      {
        title: 'User events, by event and error',
        exprs: [`sum by (event, error) (rate(${sel('keycloak_user_events_total', { job })}[5m]))`],
        names: ['[[event]] [[error]]'],
        yUnits: '/s',
        min: 0,
      },
      h.graph,
    ],
  };
}

/** The console of a server's metrics (job `jmx-<service>` or `keycloak`). */
export function serverHop(server: Exclude<MetricsServer, 'nginx'>): Hop {
  const job = scrapeJobs.server(server);
  if (server === 'cassandra') return cassandraHop(job);
  if (server === 'kafka') return kafkaHop(job);
  return keycloakHop(job);
}
