/**
 * Rendering for the CLI: every target as files (relative path → text). Pure: the CLI writes them.
 * Targets that need concrete addresses (envoy, nginx) use a documented example plan on loopback; the
 * local stack calls the compilers itself with its real ports and paths.
 */
import { svidFiles } from '@trellis/contracts';
import { own } from './identity.ts';
import { stringify } from 'yaml';
import { compileCassandra } from './compile/cassandra.ts';
import { compileEnvoy } from './compile/envoy.ts';
import type { EnvoyOptions } from './compile/envoy.ts';
import { compileGatewayApi } from './compile/gateway.ts';
import { compileIstio } from './compile/istio.ts';
import { compileK6Thresholds } from './compile/k6.ts';
import { compileKafkaAcls } from './compile/kafka.ts';
import { compileKeycloakRealm } from './compile/keycloak.ts';
import { compileNginx } from './compile/nginx.ts';
import { compilePrometheusRules, compileSloRules } from './compile/slo.ts';
import { edgeWorkloads } from './identity.ts';
import type { ValidModel } from './validate.ts';

/** Render targets of `trellis policy render`. */
export const renderTargets = [
  'istio',
  'gateway',
  'envoy',
  'kafka-acl',
  'cassandra',
  'keycloak',
  'nginx',
  'k6',
  'prometheus',
] as const;
/** A render target. */
export type RenderTarget = (typeof renderTargets)[number];

/** Options of `renderTarget`. */
export interface RenderOptions {
  /** Absolute directory the files will be written to (used in paths inside envoy and nginx configs). @default '/etc/trellis' */
  baseDir?: string;
  /** Region label for Kubernetes targets. */
  region?: string;
}

const yamlDocs = (docs: readonly unknown[]) =>
  docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/**
 * The example port plan used by `render`: sidecar inbound on model port + 10000, app on the model port,
 * admin on 9901 + index, outbound listeners from 15001; everything on 127.0.0.1.
 */
export function exampleEnvoyOptions(
  model: ValidModel,
  workload: string,
  baseDir: string,
): EnvoyOptions {
  const names = Object.keys(model.workloads);
  const w = own(model.workloads, workload);
  if (!w) throw new Error(`no workload ${workload}`);
  const dir = `${baseDir}/envoy/${workload}`;
  // A backend is reached on the port its routes use (validation keeps that to one port), else its first.
  const inboundOf = (name: string) => {
    const routed = Object.values(model.routes).find((r) => r.backend === name)?.port;
    const ports = own(model.workloads, name)?.ports ?? [];
    return (ports.find((p) => p.name === routed)?.port ?? ports[0]?.port ?? 0) + 10000;
  };
  const dataPorts: Record<string, number> = { cassandra: 9142, kafka: 9093 };
  return {
    workload,
    inbound: Object.fromEntries(w.ports.map((p) => [p.name, p.port + 10000])),
    app: Object.fromEntries(w.ports.map((p) => [p.name, { address: '127.0.0.1', port: p.port }])),
    outbound: Object.fromEntries(
      w.calls.map((c, i) => [
        c,
        { address: '127.0.0.1', port: dataPorts[c] ?? inboundOf(c), listenPort: 15001 + i },
      ]),
    ),
    adminPort: 9901 + names.indexOf(workload),
    sds: {
      dir: `${dir}/sds`,
      certChain: `${dir}/certs/${svidFiles.cert}`,
      privateKey: `${dir}/certs/${svidFiles.key}`,
      trustBundle: `${dir}/certs/${svidFiles.bundle}`,
    },
  };
}

/** Renders one target to files. */
export function renderTarget(
  model: ValidModel,
  target: RenderTarget,
  opts: RenderOptions = {},
): Record<string, string> {
  const base = opts.baseDir ?? '/etc/trellis';
  const region = opts.region !== undefined ? { region: opts.region } : {};
  switch (target) {
    case 'istio':
      return { 'istio.yaml': yamlDocs(compileIstio(model, region)) };
    case 'gateway':
      return { 'gateway.yaml': yamlDocs(compileGatewayApi(model, region)) };
    case 'envoy': {
      const files: Record<string, string> = {};
      for (const w of Object.keys(model.workloads)) {
        const a = compileEnvoy(model, exampleEnvoyOptions(model, w, base));
        files[`envoy/${w}/envoy.yaml`] = stringify(a.bootstrap, { lineWidth: 0 });
        for (const [path, sds] of Object.entries(a.sdsFiles))
          files[path.slice(base.length + 1)] = stringify(sds, { lineWidth: 0 });
      }
      return files;
    }
    case 'kafka-acl':
      return { 'kafka-acls.json': json(compileKafkaAcls(model)) };
    case 'cassandra':
      return { 'cassandra.cql': compileCassandra(model).cql };
    case 'keycloak': {
      const realm = compileKeycloakRealm(model);
      return { [`keycloak-realm-${realm.realm}.json`]: json(realm) };
    }
    case 'nginx': {
      const edge = edgeWorkloads(model)[0];
      const port =
        (edge !== undefined ? own(model.workloads, edge)?.ports[0]?.port : undefined) ?? 8080;
      return {
        'nginx/nginx.conf': compileNginx(model, {
          listen: { address: '127.0.0.1', port: 8443 },
          tls: { certificate: `${base}/nginx/tls.crt`, key: `${base}/nginx/tls.key` },
          upstream: { address: '127.0.0.1', port: port + 10000 },
          runDir: `${base}/nginx/run`,
          accessLog: `${base}/nginx/access.log`,
          errorLog: `${base}/nginx/error.log`,
        }),
      };
    }
    case 'k6':
      return { 'k6-thresholds.json': json(compileK6Thresholds(model)) };
    case 'prometheus':
      return {
        'prometheus/slo-rules.yaml': yamlDocs([compileSloRules(model)]),
        'prometheus/prometheus-rules.yaml': yamlDocs(compilePrometheusRules(model, region)),
      };
  }
}
