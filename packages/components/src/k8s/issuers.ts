import type { Model } from '@trellis/policy';

/** The identity provider settings of an environment (validated stack config). */
export type IdpSettings =
  | { mode: 'keycloak'; hostname: string }
  | { mode: 'external'; provider: string; issuer: string; jwksUri: string };

/**
 * Issuer and JWKS per model identity provider, as deployed in one environment. The in-cluster Keycloak
 * serves the model's `keycloak` provider at https://<hostname>/realms/<realm>, the realm name taken
 * from the model's issuer; an external issuer replaces the provider it names.
 */
export function clusterIssuers(
  model: Model,
  idp: IdpSettings,
): Record<string, { issuer: string; jwksUri: string }> {
  if (idp.mode === 'external') {
    if (!model.identityProviders[idp.provider]) {
      throw new Error(
        `trellis:idp.provider: "${idp.provider}" is not an identity provider of the model`,
      );
    }
    return { [idp.provider]: { issuer: idp.issuer, jwksUri: idp.jwksUri } };
  }
  const kc = model.identityProviders.keycloak;
  const realm = kc ? /\/realms\/([^/]+)/.exec(kc.issuer)?.[1] : undefined;
  if (!kc || !realm) {
    throw new Error(
      'trellis:idp.mode: keycloak needs a model identity provider "keycloak" whose issuer ends in /realms/<realm>',
    );
  }
  const issuer = `https://${idp.hostname}/realms/${realm}`;
  return { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } };
}
