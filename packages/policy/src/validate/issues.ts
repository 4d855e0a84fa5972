/** Schema issues (zod) as path-qualified errors, in words a platform engineer can act on. */
import type { z } from 'zod';
import { formatPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function expectedName(expected: string): string {
  if (expected === 'object' || expected === 'record') return 'a mapping';
  if (expected === 'array') return 'a list';
  if (expected === 'int') return 'an integer';
  return `a ${expected}`;
}

/** The errors of one schema issue (an unknown-keys issue names each key). */
export function issueToErrors(issue: z.core.$ZodIssue): PolicyError[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({
        path: formatPath([...issue.path, k]),
        reason: 'unknown field',
      }));
    case 'invalid_type':
      if (issue.input === undefined) return [{ path, reason: 'required field is missing' }];
      return [
        { path, reason: `expected ${expectedName(issue.expected)}, got ${describe(issue.input)}` },
      ];
    case 'too_small':
      if (issue.origin === 'array')
        return [{ path, reason: `must have at least ${String(issue.minimum)} item(s)` }];
      if (issue.origin === 'string') return [{ path, reason: 'must not be empty' }];
      return [
        {
          path,
          reason: `must be ${issue.inclusive ? 'at least' : 'greater than'} ${String(issue.minimum)}`,
        },
      ];
    case 'too_big':
      return [
        {
          path,
          reason: `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`,
        },
      ];
    case 'invalid_value':
      return [
        {
          path,
          reason: `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
        },
      ];
    case 'invalid_format':
      return [
        {
          path,
          reason: issue.format === 'url' ? 'must be a URL' : `must be a valid ${issue.format}`,
        },
      ];
    default:
      return [{ path, reason: issue.message }];
  }
}
