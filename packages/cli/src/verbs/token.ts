/**
 * `./trellis token --as <user|agent> [--stack S]`: print a real access token from the stack's
 * Keycloak. Users get theirs with the password grant of the public CLI client, agents with the
 * client-credentials grant of their own client. The credentials come from the stack output
 * `principals`, a Pulumi secret, read with `pulumi stack output --show-secrets`; nothing is printed
 * but the token.
 */
import { readFileSync } from 'node:fs';
// The client alone: the harness's index would load every server's driver.
import { requestText, type TextReply } from '@trellis/local/https';
import { stackArg, stackOutputs } from './up.ts';

/** The stack output `principals` (written by infra/local/src/identity.ts). */
export interface Principals {
  tokenUrl: string;
  cliClientId: string;
  users: Record<string, string>;
  agents: Record<string, string>;
}

const usage = 'usage: ./trellis token --as <user|agent> [--stack S]';

/** `--as NAME` and `--stack S` from the arguments. */
export function parseTokenArgs(args: string[]): { as: string; stack: string } {
  const i = args.indexOf('--as');
  const as = i < 0 ? undefined : args[i + 1];
  if (as === undefined || as.startsWith('-')) throw new Error(`--as needs a principal; ${usage}`);
  for (const [k, a] of args.entries())
    if (a.startsWith('-') && a !== '--as' && a !== '--stack')
      throw new Error(`unknown option '${a}' (argument ${k + 1}); ${usage}`);
  return { as, stack: stackArg(args) };
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string')
  );
}

/** The `principals` output of a stack, checked; a clear error when the stack is not up. */
export function principalsFrom(outputs: Record<string, unknown>, stack: string): Principals {
  const p = outputs.principals as Partial<Principals> | undefined;
  if (p === undefined)
    throw new Error(
      `stack '${stack}' has no 'principals' output: is it up? Run ./trellis up${stack === 'local' ? '' : ` --stack ${stack}`}`,
    );
  if (
    typeof p !== 'object' ||
    typeof p.tokenUrl !== 'string' ||
    typeof p.cliClientId !== 'string' ||
    !isStringRecord(p.users) ||
    !isStringRecord(p.agents)
  )
    throw new Error(
      `stack '${stack}': the 'principals' output is not { tokenUrl, cliClientId, users, agents }`,
    );
  return p as Principals;
}

/** Every principal a token can be had for: users, then agents, each sorted. */
export function knownPrincipals(p: Principals): string[] {
  return [...Object.keys(p.users).sort(), ...Object.keys(p.agents).sort()];
}

/** The token request for `name`: its form body (holds a secret; never print it). */
export function tokenRequest(p: Principals, name: string): URLSearchParams {
  if (Object.hasOwn(p.users, name))
    return new URLSearchParams({
      grant_type: 'password',
      client_id: p.cliClientId,
      username: name,
      password: p.users[name] ?? '',
    });
  if (Object.hasOwn(p.agents, name))
    return new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: name,
      client_secret: p.agents[name] ?? '',
    });
  throw new Error(
    `unknown principal '${name}': known are ${knownPrincipals(p).join(', ') || 'none'}`,
  );
}

/** How {@link requestToken} reaches the token endpoint. */
export interface TokenClientOptions {
  /**
   * PEM roots the token endpoint's certificate must chain to: the stack's trust bundle (output
   * `trustBundle`, the Mesh CA root). They replace the system's roots. @default the system's roots
   */
  caFile?: string;
}

// Node's codes for a certificate the trusted roots do not vouch for (or for another name).
const untrusted =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * The waits before each new try of a token request whose connection was closed before TLS was
 * established (4 tries in all, 0.7 s of waiting): longer than the 0.1 s Keycloak refuses handshakes
 * while it reloads its certificate, short enough that a Keycloak that is down fails a login fast.
 */
const TLS_RETRY_DELAYS_MS = [100, 200, 400];

/** A connection the server closed before the TLS handshake completed: no byte of the request left. */
function closedBeforeTls(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ECONNRESET' && /before secure TLS connection was established/.test(e.message);
}

/**
 * Ask Keycloak for an access token (OAuth 2.0 token endpoint, form-encoded). `localhost` is dialled
 * over IPv4, where Keycloak listens; over https the certificate must chain to `caFile` and name the
 * URL's host. The issuer in the token stays the configured hostname.
 */
export async function requestToken(
  p: Principals,
  name: string,
  o: TokenClientOptions = {},
): Promise<string> {
  const body = tokenRequest(p, name);
  let res: TextReply | undefined;
  for (let attempt = 1; res === undefined; attempt++) {
    try {
      res = await requestText(p.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: body.toString(),
        ...(o.caFile !== undefined ? { ca: readFileSync(o.caFile) } : {}),
        timeoutMs: 15_000,
      });
    } catch (err) {
      // Closed before TLS was up, so nothing was sent: safe to try again. Keycloak does this for about
      // 0.1 s each time it reloads a renewed certificate (ADR 0031); a Keycloak that is down does it
      // too (the relay in front of its pod), and then every try fails within TLS_RETRY_DELAYS_MS.
      const delay = TLS_RETRY_DELAYS_MS[attempt - 1];
      if (delay !== undefined && closedBeforeTls(err)) {
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const hint = untrusted.test(code)
        ? `its certificate is not trusted by ${o.caFile ?? "the system's roots"}; the stack's Keycloak chains to the stack's trust bundle (.trellis/<stack>/pki/root.pem)`
        : 'is the stack up?';
      const tries = attempt > 1 ? `, ${attempt} tries` : '';
      throw new Error(
        `could not reach Keycloak at ${p.tokenUrl} (${code ? `${code}: ` : ''}${(err as Error).message}${tries}); ${hint}`,
        { cause: err },
      );
    }
  }
  let json: { access_token?: string; error?: string; error_description?: string } = {};
  try {
    json = JSON.parse(res.body) as typeof json;
  } catch {
    // reported below
  }
  if (res.status !== 200 || typeof json.access_token !== 'string')
    throw new Error(
      `Keycloak refused a token for '${name}': ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim(),
    );
  return json.access_token;
}

/**
 * `token --as <user|agent> [--stack S]`: print the access token on stdout. The token endpoint is
 * trusted by the stack's own bundle (output `trustBundle`), not by the system's roots.
 */
export async function token(args: string[]): Promise<number> {
  const { as, stack } = parseTokenArgs(args);
  const outputs = await stackOutputs(stack, true);
  const p = principalsFrom(outputs, stack);
  // Fail on an unknown name before any request.
  tokenRequest(p, as);
  const caFile = typeof outputs.trustBundle === 'string' ? outputs.trustBundle : undefined;
  process.stdout.write(`${await requestToken(p, as, caFile !== undefined ? { caFile } : {})}\n`);
  return 0;
}
