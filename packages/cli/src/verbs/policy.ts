/**
 * `policy check <model.yaml>`: validate a model (exit 0), or print path-qualified errors (exit 1).
 * `policy render <model.yaml> --target T [--out DIR] [--region R]`: write the target's artefacts to DIR,
 * or print them to stdout. `policy schema [--out FILE]`: the model's JSON Schema. Usage errors exit 2.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadModelFile, ModelFileError } from '@trellis/components/model';
import { modelJsonSchema, renderTarget, renderTargets, SloBudgetError } from '@trellis/policy';
import type { RenderTarget, ValidModel } from '@trellis/policy';

const usage = `Usage:
  ./trellis policy check <model.yaml>
  ./trellis policy render <model.yaml> --target ${renderTargets.join('|')} [--out DIR] [--region R]
  ./trellis policy schema [--out FILE]
`;

function usageError(message: string): number {
  process.stderr.write(`trellis policy: ${message}\n\n${usage}`);
  return 2;
}

interface Parsed {
  positional: string[];
  flags: Map<string, string>;
}

function parseArgs(args: string[]): Parsed | string {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const value = eq === -1 ? args[++i] : a.slice(eq + 1);
      if (value === undefined || value === '') return `--${name} needs a value`;
      flags.set(name, value);
    } else positional.push(a);
  }
  return { positional, flags };
}

/** The model, or undefined after printing why not: one `<file>: <path>: <reason>` line per error. */
function load(file: string): ValidModel | undefined {
  try {
    return loadModelFile(file);
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    if (err.code !== undefined) {
      process.stderr.write(`${file}: cannot read the model (${err.code})\n`);
      return undefined;
    }
    for (const e of err.errors) process.stderr.write(`${file}: ${e.path}: ${e.reason}\n`);
    process.stderr.write(`${file}: ${err.errors.length} error(s); no artefact produced\n`);
    return undefined;
  }
}

/** The `policy` verb. */
export async function policy(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(usage);
    return sub === undefined ? 2 : 0;
  }
  const parsed = parseArgs(rest);
  if (typeof parsed === 'string') return usageError(parsed);
  const { positional, flags } = parsed;
  const allowedFlags: Record<string, string[]> = {
    check: [],
    render: ['target', 'out', 'region'],
    schema: ['out'],
  };
  const known = allowedFlags[sub];
  if (!known) return usageError(`unknown subcommand '${sub}'`);
  for (const f of flags.keys())
    if (!known.includes(f)) return usageError(`unknown option --${f} for ${sub}`);

  if (sub === 'schema') {
    if (positional.length > 0) return usageError('schema takes no model file');
    const text = `${JSON.stringify(modelJsonSchema(), null, 2)}\n`;
    const out = flags.get('out');
    if (out === undefined) process.stdout.write(text);
    else {
      await mkdir(dirname(resolve(out)), { recursive: true });
      await writeFile(out, text);
    }
    return 0;
  }

  if (positional.length !== 1 || positional[0] === undefined)
    return usageError(`${sub} needs exactly one model file`);
  const file = positional[0];

  if (sub === 'check') {
    const model = load(file);
    if (!model) return 1;
    process.stdout.write(
      `${file}: ok (${Object.keys(model.workloads).length} workloads, ${Object.keys(model.routes).length} routes, ${Object.keys(model.agents).length} agents)\n`,
    );
    return 0;
  }

  const target = flags.get('target');
  if (target === undefined) return usageError('render needs --target');
  if (!(renderTargets as readonly string[]).includes(target))
    return usageError(`unknown target '${target}' (one of ${renderTargets.join(', ')})`);
  const model = load(file);
  if (!model) return 1;
  const out = flags.get('out');
  const region = flags.get('region');
  if (region !== undefined && !(region in model.regions)) {
    process.stderr.write(
      `${file}: regions: no region '${region}' (declared: ${Object.keys(model.regions).join(', ')})\n`,
    );
    return 1;
  }
  let files: Record<string, string>;
  try {
    files = renderTarget(model, target as RenderTarget, {
      ...(out !== undefined ? { baseDir: resolve(out) } : {}),
      ...(region !== undefined ? { region } : {}),
    });
  } catch (err) {
    // A valid model whose budgets this target cannot express (a p99 that is no histogram bucket).
    if (!(err instanceof SloBudgetError)) throw err;
    for (const e of err.errors) process.stderr.write(`${file}: ${e.path}: ${e.reason}\n`);
    process.stderr.write(`${file}: ${err.errors.length} error(s); no artefact produced\n`);
    return 1;
  }
  if (out === undefined) {
    for (const [name, text] of Object.entries(files))
      process.stdout.write(`# ${name}\n${text}${text.endsWith('\n') ? '' : '\n'}`);
    return 0;
  }
  for (const [name, text] of Object.entries(files)) {
    const path = join(resolve(out), name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
    process.stdout.write(`wrote ${path}\n`);
  }
  return 0;
}
