/**
 * The `example` environment: the documented plan on loopback that `policy render` writes, for a
 * reader to see complete configs. Each workload is read as its own pod: sidecar inbound on the model
 * port + 10000, the app on the model port, admin on 9901 + its position in the model, one egress
 * listener per `calls` entry from 15001, Cassandra on 9142 and Kafka on 9093, each sidecar's metrics
 * listener on 15090 and Prometheus on 9090; files under `<baseDir>/envoy/<workload>` and
 * `<baseDir>/prometheus`. Where no deployment is involved (the load gate's thresholds), this is
 * the environment too: it moves no route and no budget.
 */
import { svidFiles } from '@trellis/contracts';
import type { Allocator, WorkloadSlot } from './allocator.ts';
import type { Endpoint, ExampleEnvironment } from './types.ts';

/** The example plan's fixed numbers. */
export const examplePlan = {
  inboundOffset: 10_000,
  adminFrom: 9901,
  /** The sidecar's metrics listener (the port Istio's sidecars serve their Prometheus stats on). */
  metrics: 15_090,
  /** The metrics scraper (Prometheus's own port), its SVID under `<baseDir>/prometheus/certs`. */
  scraper: 9090,
  egressFrom: 15_001,
  dataServices: { cassandra: 9142, kafka: 9093 },
  baseDir: '/etc/trellis',
} as const;

const at = (port: number): Endpoint => ({ address: '127.0.0.1', port });

/** The allocator of the example plan. */
export function exampleAllocator(env: ExampleEnvironment): Allocator {
  const base = (env.baseDir ?? examplePlan.baseDir).replace(/\/+$/, '');
  const dir = (w: WorkloadSlot) => `${base}/envoy/${w.name}`;
  return {
    network: (w) => `example:${w.name}`,
    inbound: (_w, p) => at(p.port + examplePlan.inboundOffset),
    app: (_w, p) => at(p.port),
    admin: (w) => at(examplePlan.adminFrom + w.declared),
    metrics: () => at(examplePlan.metrics),
    dataEgress: (_w, svc, call) => ({
      listen: at(examplePlan.egressFrom + call.index),
      upstream: at(examplePlan.dataServices[svc]),
    }),
    peerListen: (_w, call) => at(examplePlan.egressFrom + call.index),
    svid: (w) => ({
      kind: 'files',
      dir: `${dir(w)}/certs`,
      cert: `${dir(w)}/certs/${svidFiles.cert}`,
      key: `${dir(w)}/certs/${svidFiles.key}`,
      bundle: `${dir(w)}/certs/${svidFiles.bundle}`,
    }),
    proxyDir: dir,
    scraper: () => {
      const certs = `${base}/prometheus/certs`;
      return {
        svid: {
          kind: 'files',
          dir: certs,
          cert: `${certs}/${svidFiles.cert}`,
          key: `${certs}/${svidFiles.key}`,
          bundle: `${certs}/${svidFiles.bundle}`,
        },
        listen: at(examplePlan.scraper),
      };
    },
    reserved: () => [],
    dataServices: () => ({
      cassandra: at(examplePlan.dataServices.cassandra),
      kafka: at(examplePlan.dataServices.kafka),
    }),
  };
}
