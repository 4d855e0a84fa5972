/**
 * Every environment kind a generated model is bound to in the property tests, and the translation
 * of a request from the model's names into the environment's (issuers, hosts, SPIFFE IDs). A
 * binding may rename; it must not change what is allowed.
 */
import { bind, spiffeId, workloadBySpiffeId } from '../src/index.ts';
import type { BoundModel, Environment, Peer, Token, ValidModel } from '../src/index.ts';

/** The environment kinds, each with settings that move everything they can. */
export function environmentsFor(model: ValidModel): Environment[] {
  const providers = Object.keys(model.identityProviders);
  const hosts = [...new Set(Object.values(model.routes).flatMap((r) => r.hosts))];
  return [
    { kind: 'example', baseDir: '/srv' },
    {
      kind: 'local',
      basePort: 20_000,
      stackDir: '/stack',
      keycloak: { baseUrl: 'http://localhost:20180' },
    },
    {
      kind: 'kubernetes',
      issuers: Object.fromEntries(
        providers.map((p) => [
          p,
          {
            issuer: `https://${p}.cluster.example/realms/r`,
            jwksUri: `https://${p}.cluster.example/jwks`,
          },
        ]),
      ),
      hosts: Object.fromEntries(hosts.map((h) => [h, `edge.${h}`])),
      gateway: { namespace: 'gw', serviceAccount: 'gw-nginx', port: 443 },
      dataServices: {
        cassandra: { address: 'cassandra.data.svc.cluster.local', port: 9042 },
        kafka: { address: 'kafka.data.svc.cluster.local', port: 9093 },
      },
    },
  ];
}

/** A model bound to one environment, and the request translation into it. */
export interface Bound {
  kind: Environment['kind'];
  model: BoundModel;
  token(t: Token): Token;
  peer(p: Peer): Peer;
  host(h: string): string;
}

/** `model` bound to every environment kind; a binding error fails the test with its paths. */
export function bindEverywhere(model: ValidModel): Bound[] {
  return environmentsFor(model).map((env) => {
    const r = bind(model, env);
    if (!r.ok)
      throw new Error(
        `bind to ${env.kind} failed: ${JSON.stringify(r.errors)}\n${JSON.stringify(model)}`,
      );
    return translation(model, r.model);
  });
}

function translation(model: ValidModel, bound: BoundModel): Bound {
  const issuers = new Map(
    Object.entries(model.identityProviders).map(([p, idp]) => [
      idp.issuer,
      bound.identityProviders[p]?.issuer ?? idp.issuer,
    ]),
  );
  const hosts = new Map<string, string>();
  for (const [name, r] of Object.entries(model.routes))
    r.hosts.forEach((h, i) => hosts.set(h, bound.binding.routes[name]?.hosts[i] ?? h));
  return {
    kind: bound.binding.environment,
    model: bound,
    token: (t) => {
      const iss = t.claims['iss'];
      const moved = typeof iss === 'string' ? issuers.get(iss) : undefined;
      return moved === undefined ? t : { ...t, claims: { ...t.claims, iss: moved } };
    },
    peer: (p) => {
      if (p.kind !== 'cert') return p;
      const w = workloadBySpiffeId(model, p.spiffeId);
      return w === undefined ? p : { ...p, spiffeId: spiffeId(bound, w) };
    },
    host: (h) => hosts.get(h) ?? h,
  };
}
