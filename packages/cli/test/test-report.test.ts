import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { failedTests, type VitestJson } from '../src/verbs/test.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('trellis test: the failed-test list at the end of the log', () => {
  const report: VitestJson = {
    numPassedTests: 1,
    numFailedTests: 1,
    numPendingTests: 0,
    numTodoTests: 0,
    numTotalTests: 2,
    testResults: [
      {
        name: `${ROOT}/infra/local/test/a.component.test.ts`,
        startTime: 0,
        endTime: 1,
        status: 'failed',
        assertionResults: [
          { fullName: 'mesh passes the right caller', status: 'passed' },
          {
            fullName: 'mesh refuses the wrong caller',
            status: 'failed',
            failureMessages: [
              '\u001b[31mAssertionError: expected 200 to be 403\u001b[39m\n\n    at x.ts:1:1',
            ],
          },
        ],
      },
      {
        name: `${ROOT}/load-tests/test/b.component.test.ts`,
        startTime: 0,
        endTime: 1,
        status: 'failed',
        message: 'Hook timed out in 120000ms',
        assertionResults: [],
      },
      {
        name: `${ROOT}/c.test.ts`,
        startTime: 0,
        endTime: 1,
        status: 'passed',
        assertionResults: [],
      },
    ],
  };

  it('names each failed test by file and title, with its error uncoloured, and a file that failed in a hook', () => {
    const list = failedTests(report);
    expect(list).toHaveLength(2);
    expect(list[0]).toBe(
      'infra/local/test/a.component.test.ts > mesh refuses the wrong caller\n' +
        '        AssertionError: expected 200 to be 403\n' +
        '            at x.ts:1:1',
    );
    expect(list[1]).toBe('load-tests/test/b.component.test.ts\n        Hook timed out in 120000ms');
  });

  it("names the test file's own frame when the error was thrown deep in a library", () => {
    const file = `${ROOT}/packages/local/test/c.faults.test.ts`;
    const frames = [1, 2, 3, 4, 5].map(
      (i) => `    at f${i} (${ROOT}/node_modules/lib/x.js:${i}:1)`,
    );
    const list = failedTests({
      ...report,
      testResults: [
        {
          name: file,
          startTime: 0,
          endTime: 1,
          status: 'failed',
          assertionResults: [
            {
              fullName: 'reads every acknowledged write',
              status: 'failed',
              failureMessages: [
                ['Error: No connection available', ...frames, `    at readAll (${file}:42:7)`].join(
                  '\n',
                ),
              ],
            },
          ],
        },
      ],
    });
    expect(list).toHaveLength(1);
    const lines = list[0]!.split('\n');
    // The message and the first five frames, then the test's own line.
    expect(lines).toHaveLength(8);
    expect(lines[1]).toBe('        Error: No connection available');
    expect(lines[7]).toBe(`            … at readAll (${file}:42:7)`);
  });

  it('lists nothing for a report with no failure', () => {
    expect(failedTests({ ...report, testResults: [report.testResults![2]!] })).toEqual([]);
  });
});
