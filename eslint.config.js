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

/** Of the workspace packages, allow only the named ones (with their subpaths) in the files matched. */
const only = (files, pkgs, why) => {
  const names = pkgs.map((p) => p.slice('@trellis/'.length)).join('|');
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: `^@trellis/${names ? `(?!(?:${names})(?:/|$))` : ''}`, message: why },
          ],
        },
      ],
    },
  };
};

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
      '@trellis/service-platform',
    ],
    'policy is pure: of Trellis it depends only on @trellis/contracts',
  ),
  forbid(
    ['packages/components/**'],
    ['@trellis/cli', '@trellis/infra-*'],
    'components must not depend on infra or the CLI (infra → components → policy)',
  ),
  // A service depends on the service platform and the contracts only: never on another service (what
  // two services share belongs in one of those two), nor on anything in infra.
  only(
    ['packages/services/**'],
    ['@trellis/service-platform', '@trellis/contracts'],
    'a service may import only @trellis/service-platform and @trellis/contracts (never another service, nor infra)',
  ),
  // Their tests may also start real Cassandra and Kafka with the local harness (a devDependency).
  only(
    ['packages/services/*/test/**'],
    ['@trellis/service-platform', '@trellis/contracts', '@trellis/local'],
    'service tests may use @trellis/local/harness besides the platform and the contracts',
  ),
  only(['packages/contracts/**'], [], 'contracts are pure data: they import nothing from Trellis'),
  forbid(
    ['packages/local/**'],
    ['@trellis/cli', '@trellis/infra-*'],
    'local is a library for infra and tests',
  ),
);
