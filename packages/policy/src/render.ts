/**
 * Rendering for the CLI: every target as files (relative path → text). Pure: the CLI writes them.
 * The model is bound to the `example` environment (bind/example.ts), a documented plan on loopback
 * that gives the targets needing concrete addresses (envoy, nginx) complete configs; the local
 * stack binds to its own environment instead.
 */
import { stringify } from 'yaml';
import { bindOrThrow } from './bind/bind.ts';
import { envoyOptions } from './bind/envoy-options.ts';
import { examplePlan } from './bind/example.ts';
import { compileCassandra } from './compile/cassandra.ts';
import { compileEnvoy } from './compile/envoy.ts';
import { compileGatewayApi } from './compile/gateway.ts';
import { compileIstio } from './compile/istio.ts';
import { compileK6Thresholds } from './compile/k6.ts';
import { compileKafkaAcls } from './compile/kafka.ts';
import { compileKeycloakRealm } from './compile/keycloak.ts';
import { compileNginx } from './compile/nginx.ts';
import { compilePrometheusScrape } from './compile/prometheus.ts';
import { compilePrometheusRules, compileSloRules } from './compile/slo.ts';
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
  /** Absolute directory the files will be written to (used in paths inside envoy and nginx configs). @default {@link examplePlan}.baseDir */
  baseDir?: string;
  /** Region label for Kubernetes targets. */
  region?: string;
}

const yamlDocs = (docs: readonly unknown[]) =>
  docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Renders one target to files. */
export function renderTarget(
  plain: ValidModel,
  target: RenderTarget,
  opts: RenderOptions = {},
): Record<string, string> {
  const base = opts.baseDir ?? examplePlan.baseDir;
  const region = opts.region !== undefined ? { region: opts.region } : {};
  const model = bindOrThrow(plain, { kind: 'example', baseDir: base }, 'the example plan');
  switch (target) {
    case 'istio':
      return { 'istio.yaml': yamlDocs(compileIstio(model, region)) };
    case 'gateway':
      return { 'gateway.yaml': yamlDocs(compileGatewayApi(model, region)) };
    case 'envoy': {
      const files: Record<string, string> = {};
      for (const w of Object.keys(model.workloads)) {
        const a = compileEnvoy(model, envoyOptions(model, w));
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
      const edge = model.binding.edge?.workload;
      const inbound = edge !== undefined ? model.binding.workloads[edge]?.inbound : undefined;
      // A model without an edge still renders, against a placeholder upstream.
      const upstream = Object.values(inbound ?? {})[0] ?? {
        address: '127.0.0.1',
        port: 8080 + examplePlan.inboundOffset,
      };
      return {
        'nginx/nginx.conf': compileNginx(model, {
          listen: { address: '127.0.0.1', port: 8443 },
          tls: { certificate: `${base}/nginx/tls.crt`, key: `${base}/nginx/tls.key` },
          upstream,
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
        // The scrape jobs, where the model has a metrics scraper (ADR 0020).
        ...(model.binding.metrics !== undefined
          ? {
              'prometheus/prometheus.yml': yamlDocs([
                { ...compilePrometheusScrape(model), rule_files: ['slo-rules.yaml'] },
              ]),
            }
          : {}),
      };
  }
}
