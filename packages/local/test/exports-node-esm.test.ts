/**
 * Every entry point of @trellis/local loads under Node's own ESM loader, as the Pulumi programs, the
 * supervisor and the CLI load it, not only under vitest's, which papers over CommonJS interop: a named
 * import that Node cannot see in a CommonJS package (kafkajs' ACL enums, once) fails only there, and
 * then every `pulumi up` of the local stack fails with it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PKG = join(import.meta.dirname, '..');
const exportsMap = (
  JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as { exports: Record<string, string> }
).exports;

describe("@trellis/local's entry points under Node's ESM loader", () => {
  it.each(Object.entries(exportsMap))('%s loads', (name, file) => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(join(PKG, file))}); console.log(Object.keys(m).length);`,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
    );
    expect(Number(out.trim()), `${name} exports something`).toBeGreaterThan(0);
  });
});
