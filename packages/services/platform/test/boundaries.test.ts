/**
 * The lint rule of ARCHITECTURE.md §4 for services (eslint.config.js): a service imports the service
 * platform and the contracts, never another service or anything in infra. Linted as if the code were a
 * file of ledger, with the repository's own config.
 */
import { resolve } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../../..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, specifier: string): Promise<string[]> {
  const code = `import { x } from '${specifier}';\nexport { x };\n`;
  const [result] = await eslint.lintText(code, { filePath: resolve(root, file) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('service import boundaries (eslint.config.js)', () => {
  it.each(['@trellis/service-platform/http', '@trellis/contracts', '@trellis/contracts/orders-v1'])(
    'lets a service import %s',
    async (specifier) => {
      expect(await restricted('packages/services/ledger/src/probe.ts', specifier)).toEqual([]);
    },
  );

  it.each([
    '@trellis/orders-api/app',
    '@trellis/orders-api',
    '@trellis/components/services',
    '@trellis/local/harness',
    '@trellis/service-platformer',
  ])('refuses %s in a service', async (specifier) => {
    expect(await restricted('packages/services/ledger/src/probe.ts', specifier)).toEqual([
      expect.stringContaining(
        'a service may import only @trellis/service-platform and @trellis/contracts',
      ),
    ]);
  });

  it("lets a service's tests use the local harness, and nothing else from infra", async () => {
    expect(
      await restricted('packages/services/ledger/test/probe.test.ts', '@trellis/local/harness'),
    ).toEqual([]);
    expect(
      await restricted('packages/services/ledger/test/probe.test.ts', '@trellis/orders-api/app'),
    ).toHaveLength(1);
  });

  it('keeps the contracts free of any other Trellis package', async () => {
    expect(await restricted('packages/contracts/src/probe.ts', '@trellis/policy')).toHaveLength(1);
  });
});
