// The k6 script runs inside k6, not Node, so the root tsc skips it: check it here with k6's own types.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Recipe } from '../src/plan-types.ts';

const root = resolve(import.meta.dirname, '../..');
const script = readFileSync(join(root, 'load-tests/k6/load.ts'), 'utf8');

describe('the k6 script', () => {
  it('type-checks against @types/k6', async () => {
    const out = await new Promise<{ code: number; text: string }>((res) => {
      execFile(
        process.execPath,
        [
          join(root, 'node_modules/typescript/bin/tsc'),
          '-p',
          join(root, 'load-tests/k6/tsconfig.json'),
        ],
        { timeout: 120_000 },
        (err, stdout, stderr) =>
          res({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            text: stdout + stderr,
          }),
      );
    });
    expect(out.text).toBe('');
    expect(out.code).toBe(0);
  }, 120_000);

  it('implements every recipe the plan can name, and every exec function the plan uses', () => {
    const recipes: Recipe[] = ['create-order', 'get-order'];
    for (const r of recipes) expect(script).toContain(`'${r}'`);
    for (const f of ['setup', 'connect', 'route', 'mesh', 'markStart', 'markEnd'])
      expect(script).toMatch(new RegExp(`export function ${f}\\(`));
  });

  it('never logs or returns the token form', () => {
    expect(script).not.toMatch(/console\./);
    // The form is read in one place, for the token request, and fail() messages never include it.
    expect(script.match(/__ENV\.TRELLIS_TOKEN_FORM/g)).toHaveLength(1);
    expect(script).not.toMatch(/\$\{form\}/);
  });
});
