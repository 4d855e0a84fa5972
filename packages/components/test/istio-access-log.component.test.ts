/**
 * The Kubernetes stack's access-log format (`istioAccessLogFormat`, the labels of the mesh config's
 * audit provider) rendered by a real Envoy whose filters are set up as istiod sets them for a sidecar
 * (pilot/pkg/security/authn/policy_applier.go, authz/builder/builder.go): jwt_authn with the verified
 * payload in metadata under `payload` and `scope` normalised to a list, allowing a request without a
 * token; then an RBAC filter named `envoy.filters.http.rbac` without a rules stat prefix, its policy
 * named as Istio names them. This is the toolchain's Envoy, not Istio's proxy build, so it checks the
 * command operators and the metadata paths, not Istio itself.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startEnvoy } from '@trellis/local/harness';
import type { EnvoyInstance } from '@trellis/local/harness';
import { bindOrThrow, istioAccessLogFormat } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFile, referenceModelPath } from '../src/model.ts';

const issuer = 'https://auth.us.trellis.example/realms/trellis';
const policyId = 'ns[trellis]-policy[orders-api]-rule[0]';
const env = { ISTIO_META_WORKLOAD_NAME: 'orders-api', POD_NAMESPACE: 'trellis' };

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = JSON.stringify({
  keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }],
});
function token(claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' }));
  const body = b64url(JSON.stringify(claims));
  return `${head}.${body}.${b64url(sign('RSA-SHA256', Buffer.from(`${head}.${body}`), privateKey))}`;
}

const typed = (type: string, config: Record<string, unknown>) => ({
  '@type': `type.googleapis.com/${type}`,
  ...config,
});

function bootstrap(port: number, logPath: string, format: unknown): Record<string, unknown> {
  return {
    static_resources: {
      listeners: [
        {
          name: 'virtualInbound',
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: typed(
                    'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    {
                      stat_prefix: 'inbound',
                      access_log: [
                        {
                          name: 'envoy.access_loggers.file',
                          typed_config: typed(
                            'envoy.extensions.access_loggers.file.v3.FileAccessLog',
                            {
                              path: logPath,
                              // As istiod writes a `labels` format (telemetry_logging.go).
                              log_format: {
                                json_format: format,
                                json_format_options: { sort_properties: false },
                              },
                            },
                          ),
                        },
                      ],
                      route_config: {
                        virtual_hosts: [
                          {
                            name: 'inbound|http|8080',
                            domains: ['*'],
                            routes: [
                              {
                                name: 'default',
                                match: { prefix: '/' },
                                direct_response: { status: 200, body: { inline_string: 'ok' } },
                              },
                            ],
                          },
                        ],
                      },
                      http_filters: [
                        {
                          name: 'envoy.filters.http.jwt_authn',
                          typed_config: typed(
                            'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
                            {
                              providers: {
                                'origins-0': {
                                  issuer,
                                  audiences: ['trellis-api'],
                                  local_jwks: { inline_string: jwks },
                                  payload_in_metadata: 'payload',
                                  normalize_payload_in_metadata: {
                                    space_delimited_claims: ['permission', 'scope'],
                                  },
                                },
                              },
                              rules: [
                                {
                                  match: { prefix: '/' },
                                  requires: {
                                    requires_any: {
                                      requirements: [
                                        { provider_name: 'origins-0' },
                                        { allow_missing: {} },
                                      ],
                                    },
                                  },
                                },
                              ],
                            },
                          ),
                        },
                        {
                          name: 'envoy.filters.http.rbac',
                          typed_config: typed('envoy.extensions.filters.http.rbac.v3.RBAC', {
                            rules: {
                              action: 'ALLOW',
                              policies: {
                                [policyId]: {
                                  permissions: [
                                    { header: { name: ':method', string_match: { exact: 'GET' } } },
                                  ],
                                  principals: [{ any: true }],
                                },
                              },
                            },
                          }),
                        },
                        {
                          name: 'envoy.filters.http.router',
                          typed_config: typed('envoy.extensions.filters.http.router.v3.Router', {}),
                        },
                      ],
                    },
                  ),
                },
              ],
            },
          ],
        },
      ],
    },
  };
}

let dir = '';
let proxy: EnvoyInstance | undefined;
let port = 0;
let logPath = '';
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-istio-log-'));
  logPath = join(dir, 'access.log');
  port = await freePort();
  const model = loadModelFile(referenceModelPath);
  const bound = bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan');
  // What the injected sidecar has in its environment (istiod's injection template).
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  proxy = await startEnvoy({
    dir: join(dir, 'envoy'),
    config: bootstrap(port, logPath, istioAccessLogFormat(bound)),
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The access-log lines, once `n` are there. */
async function lines(n: number): Promise<Record<string, unknown>[]> {
  const until = Date.now() + 15_000;
  for (;;) {
    const text = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
    const got = text.split('\n').filter((l) => l.trim() !== '');
    if (got.length >= n) return got.map((l) => JSON.parse(l) as Record<string, unknown>);
    if (Date.now() > until) throw new Error(`${got.length} access-log lines, expected ${n}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("Istio's access-log format in a real Envoy", () => {
  const now = Math.floor(Date.now() / 1000);
  const alice = token({
    iss: issuer,
    aud: 'trellis-api',
    sub: 'alice-id',
    azp: 'trellis-cli',
    scope: 'orders:read orders:write',
    exp: now + 300,
  });
  const secret = 'query-secret-7d1e';

  it('logs the verified claims, the RBAC policy that allowed, the request id and the workload; never the token', async () => {
    const call = (method: string, id: string, auth?: string) =>
      // Not `access_token`: jwt_authn would read that parameter as a (bad) token too.
      fetch(`http://127.0.0.1:${port}/orders/42?note=${secret}`, {
        method,
        headers: { 'x-request-id': id, ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      });
    expect((await call('GET', 'req-allowed', alice)).status).toBe(200);
    expect((await call('DELETE', 'req-denied', alice)).status).toBe(403);
    expect((await call('GET', 'req-anonymous')).status).toBe(200);
    // Envoy flushes access-log files every 10 s by default (--file-flush-interval-msec), and on exit.
    await proxy?.stop();
    proxy = undefined;
    const byId = Object.fromEntries((await lines(3)).map((l) => [l.requestId, l]));

    expect(byId['req-allowed']).toMatchObject({
      source: 'envoy',
      workload: 'orders-api',
      namespace: 'trellis',
      method: 'GET',
      path: '/orders/42',
      route: 'default',
      status: 200,
      rbac: 'allowed',
      rbacPolicy: policyId,
      jwt: {
        payload: {
          iss: issuer,
          sub: 'alice-id',
          azp: 'trellis-cli',
          // Istio's normalize_payload_in_metadata splits the space-delimited scope claim.
          scope: ['orders:read', 'orders:write'],
        },
      },
    });
    expect(byId['req-denied']).toMatchObject({
      method: 'DELETE',
      status: 403,
      rbac: 'denied',
      details: 'rbac_access_denied_matched_policy[none]',
      jwt: { payload: { sub: 'alice-id' } },
    });
    // No token: nothing verified, so no claims; the request still passes RBAC here.
    expect(byId['req-anonymous']).toMatchObject({
      status: 200,
      jwt: { payload: { sub: null, azp: null } },
    });
    // HTTP lines leave the TCP fields empty.
    expect(byId['req-allowed']).toMatchObject({ tcpRbac: null, upstreamPeer: null });

    const text = readFileSync(logPath, 'utf8');
    expect(text).not.toContain(alice.split('.')[2] as string);
    expect(text).not.toContain(alice);
    expect(text).not.toContain(secret);
  });
});
