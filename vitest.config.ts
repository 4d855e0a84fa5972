import { defineConfig } from 'vitest/config';

// Projects: fast unit tests, and component tests that start real servers (serial, long timeouts).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/**/test/**/*.test.ts', 'infra/**/test/**/*.test.ts', 'load-tests/test/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/*.component.test.ts', '**/*.e2e.test.ts'],
        },
      },
      {
        test: {
          name: 'component',
          include: ['packages/**/test/**/*.component.test.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
