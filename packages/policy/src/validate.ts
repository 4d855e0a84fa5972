/**
 * Parsing and validation. `parseModel` (YAML text) and `validateModel` (plain data) never throw: they
 * return either a `ValidModel` or a non-empty list of path-qualified errors. Compilers accept only a
 * `ValidModel`, so an invalid model cannot yield an artefact. The schema (schema.ts) checks shape; the
 * rules that need names, patterns or the whole model are in validate/, one file per section.
 */
import { parseDocument } from 'yaml';
import { formatPath, rootPath } from './errors.ts';
import type { PolicyError } from './errors.ts';
import { dnsLabel, trustDomain } from './patterns.ts';
import { modelSchema } from './schema.ts';
import type { Model } from './schema.ts';
import { checkMtls } from './validate/common.ts';
import { checkCassandra, checkKafka } from './validate/data.ts';
import { checkAgents, checkProviders, checkWorkloads } from './validate/identities.ts';
import { issueToErrors } from './validate/issues.ts';
import { checkRoutes } from './validate/routes.ts';

export { cassandraSystemKeyspaces } from './patterns.ts';
export { minJustificationLength } from './validate/common.ts';

declare const validBrand: unique symbol;
/** A model that passed every check. Only `parseModel` and `validateModel` produce one. */
export type ValidModel = Model & { readonly [validBrand]: true };

/** The outcome of parsing or validating a model. */
export type ModelResult =
  | { ok: true; model: ValidModel; errors: [] }
  | { ok: false; model?: undefined; errors: PolicyError[] };

/** Parses YAML text and validates it. Never throws. */
export function parseModel(text: string): ModelResult {
  let data: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        errors: doc.errors.map((e) => {
          const at = e.linePos?.[0];
          const where = at ? ` at line ${at.line}, column ${at.col}` : '';
          return { path: rootPath, reason: `YAML syntax error${where}: ${firstLine(e.message)}` };
        }),
      };
    }
    // maxAliasCount bounds alias expansion ("billion laughs").
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    return { ok: false, errors: [{ path: rootPath, reason: `YAML error: ${messageOf(err)}` }] };
  }
  return validateModel(data);
}

/** Validates plain data (e.g. parsed JSON or YAML) as a model. Never throws. */
export function validateModel(data: unknown): ModelResult {
  try {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      return {
        ok: false,
        errors: [{ path: rootPath, reason: 'the model must be a mapping (an object)' }],
      };
    }
    // A model is plain data. Cloning it first turns null-prototype objects (which zod's checks
    // cannot print) into ordinary ones and refuses functions and symbols with a named error.
    let plain: unknown;
    try {
      plain = structuredClone(data);
    } catch (err) {
      return {
        ok: false,
        errors: [{ path: rootPath, reason: `the model must be plain data: ${messageOf(err)}` }],
      };
    }
    const parsed = modelSchema.safeParse(plain, { reportInput: true });
    if (!parsed.success) return { ok: false, errors: parsed.error.issues.flatMap(issueToErrors) };
    const errors = checkModel(parsed.data);
    if (errors.length > 0) return { ok: false, errors };
    return { ok: true, model: parsed.data as ValidModel, errors: [] };
  } catch (err) {
    // A safety net: a bug in a check must still come back as an error, never as an exception.
    return { ok: false, errors: [{ path: rootPath, reason: `internal error: ${messageOf(err)}` }] };
  }
}

/** The message without the snippet and position that `prettyErrors` appends. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The cross-field rules. Each pushes an error with the path of the field at fault. */
function checkModel(m: Model): PolicyError[] {
  const errors: PolicyError[] = [];
  const err = (path: PropertyKey[], reason: string) =>
    errors.push({ path: formatPath(path), reason });

  if (!trustDomain.re.test(m.trustDomain)) err(['trustDomain'], trustDomain.reason);
  if (!dnsLabel.re.test(m.namespace)) err(['namespace'], dnsLabel.reason);
  checkMtls(m.mtls, ['mtls'], err);

  if (Object.keys(m.regions).length === 0) err(['regions'], 'declare at least one region');
  for (const r of Object.keys(m.regions))
    if (!dnsLabel.re.test(r)) err(['regions', r], dnsLabel.reason);

  checkProviders(m, err);
  checkWorkloads(m, err);
  checkRoutes(m, err);
  checkCassandra(m, err);
  checkKafka(m, err);
  checkAgents(m, err);

  const mesh = m.budgets?.mesh;
  if (mesh && mesh.p50Ms > mesh.p99Ms) err(['budgets', 'mesh', 'p50Ms'], 'p50 must not exceed p99');
  return errors;
}
