/** Checks shared by the model's sections. Each reports through `Err` with the path of the field. */
import type { Model } from '../schema.ts';
import { own } from '../identity.ts';
import { loopbackHosts } from '../patterns.ts';

/** Reports one error at `path`. */
export type Err = (path: PropertyKey[], reason: string) => void;

/** Minimum length of a PERMISSIVE justification: a sentence, not a token. */
export const minJustificationLength = 20;

/** Why a `*` in an identity is refused. */
export const wildcardReason = 'wildcard principals are not allowed: name each identity';

/** PERMISSIVE mTLS must say why. */
export function checkMtls(mtls: Model['mtls'] | undefined, path: PropertyKey[], err: Err): void {
  if (mtls?.mode !== 'PERMISSIVE') return;
  if ((mtls.justification ?? '').trim().length < minJustificationLength)
    err(
      [...path, 'justification'],
      `PERMISSIVE mTLS needs a written justification (at least ${minJustificationLength} characters)`,
    );
}

/** An identity provider URL: https, or http to a loopback host. */
export function checkUrl(url: string, path: PropertyKey[], err: Err): void {
  const u = new URL(url);
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && (loopbackHosts as readonly string[]).includes(u.hostname)) return;
  err(path, 'must use https (http is allowed only for a loopback host)');
}

/** A scope a provider declares: no whitespace, no wildcard. */
export function checkScopeName(scope: string, path: PropertyKey[], err: Err): void {
  if (/\s/.test(scope))
    err(path, 'a scope must not contain whitespace (scopes are space-separated in tokens)');
  else if (scope.includes('*')) err(path, 'wildcard scopes are not allowed: name each scope');
}

/** A data-service identity: a declared workload that calls the service. */
export function checkIdentity(
  m: Model,
  identity: string,
  service: 'cassandra' | 'kafka',
  path: PropertyKey[],
  err: Err,
): void {
  if (identity.includes('*')) err(path, wildcardReason);
  else if (!own(m.workloads, identity))
    err(path, `unknown reference: no workload named '${identity}'`);
  else if (!own(m.workloads, identity)?.calls.includes(service))
    err(path, `workloads.${identity} does not list '${service}' in calls`);
}
