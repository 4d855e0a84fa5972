// Temporary (not committed): dumps compileIstio, compileKeycloakRealm and validateModel outputs.
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { compileIstio, compileKeycloakRealm, parseModel, validateModel } from '../../src/index.ts';
import { modelArb } from '../arbitraries.ts';

const root = new URL('../../../../', import.meta.url);
const texts = [
  'trellis.yaml',
  'infra/local/test/fixtures/data/model-a.yaml',
  'infra/local/test/fixtures/data/model-b.yaml',
].map((p) => readFileSync(new URL(p, root), 'utf8'));
const models = texts.map((t) => {
  const r = parseModel(t);
  if (!r.ok) throw new Error('bad');
  return r.model;
});
models.push(...fc.sample(modelArb, { numRuns: 300, seed: 7 }));
const out: unknown[] = [];
const run = (f: () => unknown) => {
  try {
    return f();
  } catch (e) {
    return `throws ${String(e)}`;
  }
};
for (const m of models) {
  const regions = Object.keys(m.regions);
  out.push(run(() => compileIstio(m)));
  out.push(
    run(() =>
      compileIstio(m, {
        namespace: 'other',
        region: regions[0],
        rootNamespace: 'mesh-root',
        selectorLabel: 'x',
      }),
    ),
  );
  out.push(run(() => compileIstio(m, { region: 'nope' })));
  out.push(run(() => compileKeycloakRealm(m)));
  for (const p of Object.keys(m.identityProviders))
    out.push(
      run(() =>
        compileKeycloakRealm(m, {
          provider: p,
          realm: 'rr',
          userClient: { clientId: 'c', directAccessGrants: false, redirectUris: ['https://x/cb'] },
          agentSecrets: Object.fromEntries(Object.keys(m.agents).map((a) => [a, `s-${a}`])),
          users: [
            {
              username: 'u',
              password: 'p',
              roles: Object.keys(m.identityProviders[p]?.roles ?? {}),
              email: 'u@x',
            },
          ] as never,
          sslRequired: 'all',
          accessTokenLifespan: 60,
        }),
      ),
    );
  out.push(run(() => compileKeycloakRealm(m, { provider: 'nope' })));
}
// Validation: mutate one field of each base at a time.
const anyValue = fc.oneof(
  fc.constantFrom(
    null,
    true,
    0,
    -1,
    1.5,
    '',
    '*',
    'spiffe://x',
    '__proto__',
    'a b',
    'UPPER',
    '/x',
    'http://h',
    'https://h/p',
    'x.y',
    'ns/sa',
  ),
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc.array(fc.constantFrom('a', 'orders-api', 1, ''), { maxLength: 3 }),
  fc.dictionary(
    fc.constantFrom('a', 'http', 'orders-api', 'x'),
    fc.constantFrom(1, 'a', null, {}),
    { maxKeys: 2 },
  ),
);
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [prefix];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [prefix, ...entries.flatMap(([k, x]) => paths(x, [...prefix, k]))];
}
for (const t of texts) {
  const base = parse(t) as Record<string, unknown>;
  const all = paths(base);
  out.push(validateModel(base));
  const samples = fc.sample(fc.tuple(fc.nat(all.length - 1), anyValue, fc.boolean()), {
    numRuns: 3000,
    seed: 11,
  });
  for (const [i, v, del] of samples) {
    const d = structuredClone(base);
    const path = all[i] ?? [];
    if (path.length === 0) continue;
    let o: Record<string | number, unknown> = d;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
    const last = path[path.length - 1] as string | number;
    if (del) delete o[last];
    else o[last] = v;
    out.push(run(() => validateModel(d)));
  }
}
for (const m of models.slice(3)) out.push(validateModel(structuredClone(m)));
writeFileSync(process.argv[2] ?? '/tmp/golden.json', JSON.stringify(out));
console.log('entries', out.length);
