/**
 * `./trellis token --as <user|agent> [--stack S]`: print a real access token from the stack's
 * Keycloak. Users get theirs with the password grant of the public CLI client, agents with the
 * client-credentials grant of their own client. The credentials come from the stack output
 * `principals`, a Pulumi secret, read with `pulumi stack output --show-secrets`; nothing is printed
 * but the token.
 */
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

/**
 * Ask Keycloak for an access token (OAuth 2.0 token endpoint, form-encoded). `localhost` is dialled
 * as 127.0.0.1, where Keycloak listens; the issuer in the token stays the configured hostname.
 */
export async function requestToken(p: Principals, name: string): Promise<string> {
  const body = tokenRequest(p, name);
  const url = new URL(p.tokenUrl);
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new Error(
      `could not reach Keycloak at ${p.tokenUrl} (${(err as Error).message}); is the stack up?`,
      { cause: err },
    );
  }
  const json = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    error?: string;
    error_description?: string;
  };
  if (res.status !== 200 || typeof json.access_token !== 'string')
    throw new Error(
      `Keycloak refused a token for '${name}': ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim(),
    );
  return json.access_token;
}

/** `token --as <user|agent> [--stack S]`: print the access token on stdout. */
export async function token(args: string[]): Promise<number> {
  const { as, stack } = parseTokenArgs(args);
  const p = principalsFrom(await stackOutputs(stack, true), stack);
  // Fail on an unknown name before any request.
  tokenRequest(p, as);
  process.stdout.write(`${await requestToken(p, as)}\n`);
  return 0;
}
