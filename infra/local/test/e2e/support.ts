/** Helpers of the end-to-end suite: HTTPS with our CA and SVIDs, tokens, hand-made JWTs. */
import { createSign, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { inject } from 'vitest';
import { requestToken, type Principals } from '@trellis/cli/token';
import { runInPod, type PodLaunch } from '@trellis/local/pods';

/** The stack outputs the suite reads (see infra/local/index.ts). */
export interface E2eOutputs {
  ingressUrl: string;
  trustBundle: string;
  sidecars: Record<
    string,
    { spiffeId: string; adminUrl: string; inbound: Record<string, number>; certDir: string }
  >;
  services: Record<string, { url: string }>;
  keycloak: { issuer: string; tokenUrl: string };
  cassandra: { host: string; port: number; spiffeId: string; localDataCenter: string };
  kafka: { bootstrap: string; spiffeId: string };
  /** The metrics scraper (ADR 0020); absent when the model declares none. */
  prometheus?: { url: string; spiffeId: string; jobs: string[] };
  /** The trace pipeline (ADR 0023); absent when the model declares no `tracing`. */
  tracing?: { jaegerUrl: string };
}

export function outputs(): E2eOutputs {
  return inject('e2eOutputs') as unknown as E2eOutputs;
}

/** Every output, secrets included (`pulumi stack output --json --show-secrets`). */
export function secretOutputs(): Record<string, unknown> {
  return inject('e2eSecrets') as Record<string, unknown>;
}

export function principals(): Principals {
  return (secretOutputs() as { principals: Principals }).principals;
}

/** The stack's own directory, `.trellis/<stack>`: its pki/ holds every identity's files. */
export function pkiFiles(identity: string): { cert: string; key: string; ca: string } {
  const dir = join(outputs().trustBundle, '..', identity);
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'bundle.pem') };
}

/** A new login (never cached): the token endpoint's answer now. */
export function freshToken(as: string): Promise<string> {
  return requestToken(principals(), as, { caFile: outputs().trustBundle });
}

const tokens = new Map<string, string>();
/** A fresh-enough access token for a demo principal (cached for the run; Keycloak's lifespan is minutes). */
export async function token(as: string): Promise<string> {
  const t =
    tokens.get(as) ?? (await requestToken(principals(), as, { caFile: outputs().trustBundle }));
  tokens.set(as, t);
  return t;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Client certificate files (mTLS); none by default. */
  client?: { cert: string; key: string };
  /** Trust these roots (default: the stack's bundle); a server identified by SPIFFE ID has no DNS SAN. */
  ca?: string;
  spiffeServer?: boolean;
}

/** One HTTP(S) request with the stack's trust bundle; resolves even for error statuses. */
export function call(url: string, o: CallOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const tls = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      u,
      {
        method: o.method ?? 'GET',
        headers: { ...(o.body ? { 'content-type': 'application/json' } : {}), ...o.headers },
        timeout: 10_000,
        ...(tls
          ? {
              ca: readFileSync(o.ca ?? outputs().trustBundle),
              ...(o.client
                ? { cert: readFileSync(o.client.cert), key: readFileSync(o.client.key) }
                : {}),
              ...(o.spiffeServer ? { checkServerIdentity: () => undefined } : {}),
              agent: false,
            }
          : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    if (o.body) req.write(o.body);
    req.end();
  });
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

/** The parts of a JWT, decoded. */
export function decodeJwt(jwt: string): {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
} {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>,
  };
}

/** An unsigned token (`alg: none`) with the given claims. */
export function unsignedJwt(payload: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}.`;
}

/** A token with a real ES256 signature by a key the stack has never seen. */
export function foreignJwt(payload: Record<string, unknown>): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const head = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'e2e-foreign' }))}.${b64url(JSON.stringify(payload))}`;
  const sig = createSign('SHA256')
    .update(head)
    .sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${head}.${b64url(sig)}`;
}

/** The same token with one claim changed and the original signature kept. */
export function tamperedJwt(jwt: string, claims: Record<string, unknown>): string {
  const [h, , s] = jwt.split('.');
  const payload = { ...decodeJwt(jwt).payload, ...claims };
  return `${h}.${b64url(JSON.stringify(payload))}.${s}`;
}

/** The stack's pods (output `pods`; empty when it runs none): each one's launch. */
export function pods(): Record<string, { address: string; user: string; launch: PodLaunch }> {
  return ((secretOutputs() as { pods?: unknown }).pods ?? {}) as Record<
    string,
    { address: string; user: string; launch: PodLaunch }
  >;
}

/**
 * GET `url` where `workload` would: from the host, or from inside its pod (as its user) when it runs
 * in one, where its app and its sidecar's admin listen on the pod's own loopback. Status 0 when the
 * request failed (refused, timed out).
 */
export async function getAs(
  workload: string,
  url: string,
): Promise<{ status: number; body: string }> {
  const pod = pods()[workload];
  if (pod === undefined)
    return fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      (e: unknown) => ({ status: 0, body: String(e) }),
    );
  const r = await runInPod(
    pod.launch,
    process.execPath,
    [
      '-e',
      'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e) })))',
      url,
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) return { status: 0, body: `${workload}: in its pod: ${r.stderr}` };
  return JSON.parse(r.stdout) as { status: number; body: string };
}

/**
 * Sum of every Envoy counter whose name matches `re`, from the admin endpoint of `workload`'s
 * sidecar: from the host, or from inside the workload's pod (as its user) when it runs in one,
 * where its admin interface listens on the pod's own loopback.
 */
export async function envoyCounter(workload: string, re: RegExp): Promise<number> {
  const url = `${outputs().sidecars[workload]?.adminUrl ?? ''}/stats?format=json`;
  const r = await getAs(workload, url);
  if (r.status !== 200) throw new Error(`${workload}: admin stats: HTTP ${r.status}: ${r.body}`);
  const text = r.body;
  const json = JSON.parse(text) as { stats: { name?: string; value?: number }[] };
  return json.stats
    .filter((s) => s.name !== undefined && re.test(s.name) && typeof s.value === 'number')
    .reduce((sum, s) => sum + (s.value ?? 0), 0);
}

/**
 * The realm's base URL (from the issuer) with `localhost` dialled as 127.0.0.1, where Keycloak
 * listens (HTTPS only; its certificate names 127.0.0.1 and chains to the stack's bundle).
 */
function keycloakBase(): { base: string; realm: string } {
  const iss = new URL(outputs().keycloak.issuer);
  const realm = iss.pathname.split('/').pop() ?? '';
  if (iss.hostname === 'localhost') iss.hostname = '127.0.0.1';
  return { base: iss.origin, realm };
}

const form = { 'content-type': 'application/x-www-form-urlencoded' };

async function adminToken(): Promise<string> {
  const admin = (inject('e2eSecrets') as { keycloakAdmin: { username: string; password: string } })
    .keycloakAdmin;
  const { base } = keycloakBase();
  const res = await call(`${base}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      ...admin,
    }).toString(),
  });
  if (res.status !== 200) throw new Error(`Keycloak admin login failed: ${res.status}`);
  return (JSON.parse(res.body) as { access_token: string }).access_token;
}

/**
 * A real token from the stack's Keycloak, signed by the realm key, for a throwaway client created through
 * the admin API: with `scopes` as its default client scopes (leave out `keycloak-audience` for a wrong
 * audience) and an access-token lifespan of `lifespanSeconds`.
 */
export async function realmToken(
  clientId: string,
  scopes: string[],
  lifespanSeconds = 300,
): Promise<string> {
  const { base, realm } = keycloakBase();
  const auth = {
    authorization: `Bearer ${await adminToken()}`,
    'content-type': 'application/json',
  };
  const secret = `e2e-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const created = await call(`${base}/admin/realms/${realm}/clients`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({
      clientId,
      secret,
      publicClient: false,
      serviceAccountsEnabled: true,
      standardFlowEnabled: false,
      directAccessGrantsEnabled: false,
      defaultClientScopes: scopes,
      optionalClientScopes: [],
      attributes: { 'access.token.lifespan': String(lifespanSeconds) },
    }),
  });
  if (created.status !== 201 && created.status !== 409)
    throw new Error(`could not create client ${clientId}: ${created.status} ${created.body}`);
  const res = await call(`${base}/realms/${realm}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: secret,
    }).toString(),
  });
  if (res.status !== 200) throw new Error(`token for ${clientId}: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { access_token: string }).access_token;
}
