// Lint, including the import direction of ARCHITECTURE.md §3: infra → components → policy, never back.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Forbid imports of the named workspace packages from the files matched. */
const forbid = (files, pkgs, why) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: pkgs.map((p) => ({ group: [p, `${p}/*`], message: why })) },
    ],
  },
});

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '.trellis/**', 'reports/**', 'load-tests/k6/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  // The policy package stays readable: no source file over 400 lines, and the compilers are built from
  // small functions (one builder per concern, as envoyproxy/gateway's translator).
  {
    files: ['packages/policy/src/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 400 }] },
  },
  {
    files: ['packages/policy/src/compile/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80 }] },
  },
  forbid(
    ['packages/policy/**'],
    [
      '@trellis/components',
      '@trellis/local',
      '@trellis/cli',
      '@trellis/infra-*',
      '@trellis/orders-api',
      '@trellis/ledger',
    ],
    'policy is pure: it depends on nothing else in Trellis',
  ),
  forbid(
    ['packages/components/**'],
    ['@trellis/cli', '@trellis/infra-*'],
    'components must not depend on infra or the CLI (infra → components → policy)',
  ),
  forbid(
    ['packages/services/**'],
    ['@trellis/components', '@trellis/local', '@trellis/cli', '@trellis/infra-*'],
    'services depend on nothing in infra',
  ),
  // Their component tests start real Cassandra and Kafka with the local harness (a devDependency).
  forbid(
    ['packages/services/*/test/**'],
    ['@trellis/components', '@trellis/cli', '@trellis/infra-*'],
    'service tests may use @trellis/local/harness, nothing else from infra',
  ),
  forbid(
    ['packages/local/**'],
    ['@trellis/cli', '@trellis/infra-*'],
    'local is a library for infra and tests',
  ),
);
