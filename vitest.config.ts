import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The default order, except that the e2e suite's `stack.e2e.test.ts` runs last: its last tests
 * destroy the stack every other e2e file (the bypass table) runs against.
 */
class StackLastSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const last = (f: TestSpecification): boolean =>
      f.project.name === 'e2e' && f.moduleId.endsWith('/stack.e2e.test.ts');
    return [...sorted.filter((f) => !last(f)), ...sorted.filter(last)];
  }
}

// Projects: fast unit tests; component tests that start real servers (serial, long timeouts); the cluster
// tests of infra/k8s against a real API server; and the end-to-end suite against a whole local stack brought up once per run. `./trellis test` runs them in that
// order, one project at a time, so the heavy ones never compete for the two cores.
export default defineConfig({
  test: {
    sequence: { sequencer: StackLastSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'packages/**/test/**/*.test.ts',
            'infra/**/test/**/*.test.ts',
            'load-tests/test/**/*.test.ts',
          ],
          exclude: [
            '**/node_modules/**',
            '**/*.component.test.ts',
            '**/*.extended.test.ts',
            '**/*.e2e.test.ts',
            '**/*.cluster.test.ts',
            '**/*.faults.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'component',
          include: [
            'packages/**/test/**/*.component.test.ts',
            'infra/**/test/**/*.component.test.ts',
            'load-tests/test/**/*.component.test.ts',
          ],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
      {
        // The data layer as clusters (3 Cassandra nodes, 3 KRaft nodes) and the faults they must survive
        // (`./trellis test --project faults`): real servers, one file at a time, each starting its own.
        test: {
          name: 'faults',
          include: ['packages/**/test/**/*.faults.test.ts', 'infra/**/test/**/*.faults.test.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
      {
        // Opt-in (`./trellis test --project extended`, not in the default run): real servers like the
        // component project, for what CI does not rely on (docs/toolchain.md, "Test tiers").
        test: {
          name: 'extended',
          include: [
            'packages/**/test/**/*.extended.test.ts',
            'infra/**/test/**/*.extended.test.ts',
            'load-tests/test/**/*.extended.test.ts',
          ],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
      {
        // infra/k8s applied with the real Kubernetes provider to a loopback API server (etcd, kube-apiserver,
        // kwok), then read back. One file at a time: each starts its own control plane.
        test: {
          name: 'cluster',
          include: ['infra/**/test/**/*.cluster.test.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 3_600_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['infra/local/test/e2e/**/*.e2e.test.ts'],
          exclude: ['**/node_modules/**'],
          globalSetup: ['infra/local/test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 1_200_000,
        },
      },
    ],
  },
});
