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

  it('lists nothing for a report with no failure', () => {
    expect(failedTests({ ...report, testResults: [report.testResults![2]!] })).toEqual([]);
  });
});
