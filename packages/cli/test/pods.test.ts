// `up`/`down`'s pieces about pods that need no root: which stacks have pods, the preflight's
// message, which supervisors a sweep finds, and when a Pulumi state counts as empty.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  liveResources,
  podsPreflightMessage,
  stackHasPods,
  supervisorStates,
} from '../src/pods.ts';

const tmp = mkdtempSync(join(tmpdir(), 'trellis-cli-pods-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('stackHasPods', () => {
  it('reads trellis-local:pods, on unless it is false', () => {
    const project = join(tmp, 'project');
    mkdirSync(project);
    const write = (stack: string, extra: string) =>
      writeFileSync(
        join(project, `Pulumi.${stack}.yaml`),
        `config:\n  trellis-local:basePort: '8000'\n${extra}`,
      );
    write('on', "  trellis-local:pods: 'true'\n");
    write('off', "  trellis-local:pods: 'false'\n");
    write('bool-off', '  trellis-local:pods: false\n');
    write('default', '');
    expect(stackHasPods('on', project)).toBe(true);
    expect(stackHasPods('off', project)).toBe(false);
    expect(stackHasPods('bool-off', project)).toBe(false);
    expect(stackHasPods('default', project)).toBe(true);
  });

  it('is on for the committed local and e2e stacks', () => {
    expect(stackHasPods('local')).toBe(true);
    expect(stackHasPods('e2e')).toBe(true);
  });
});

describe('podsPreflightMessage', () => {
  it('is null when the preflight passes', () => {
    expect(podsPreflightMessage('local', () => undefined)).toBeNull();
  });

  it('names the stack, what is missing and the way out when it fails', () => {
    const msg = podsPreflightMessage('local', () => {
      throw new Error('cannot create pods: `ip` is not installed (package iproute2)');
    });
    expect(msg).toBe(
      "stack 'local' runs every workload as a pod (trellis-local:pods), and cannot create pods: " +
        '`ip` is not installed (package iproute2). Without root, set trellis-local:pods to ' +
        "'false' in infra/local/Pulumi.local.yaml (every workload then runs on the host, without " +
        'the isolation).',
    );
  });
});

describe('supervisorStates', () => {
  it('finds each component’s supervisor.json two levels down, and nothing deeper', () => {
    const run = join(tmp, 'run');
    for (const d of ['nginx', 'cassandra/node-1', 'kafka/data/deep/er'])
      mkdirSync(join(run, d), { recursive: true });
    for (const f of [
      'nginx/supervisor.json',
      'cassandra/node-1/supervisor.json',
      'kafka/data/deep/er/supervisor.json',
      'nginx/supervisor.json.spec.json',
    ])
      writeFileSync(join(run, f), '{}');
    expect(supervisorStates(run)).toEqual([
      join(run, 'cassandra/node-1/supervisor.json'),
      join(run, 'nginx/supervisor.json'),
    ]);
    expect(supervisorStates(join(tmp, 'absent'))).toEqual([]);
  });
});

describe('liveResources', () => {
  it('counts resources besides the stack and its providers', () => {
    const doc = (types: string[]) =>
      JSON.stringify({ version: 3, deployment: { resources: types.map((type) => ({ type })) } });
    expect(liveResources(doc([]))).toBe(0);
    expect(liveResources(JSON.stringify({ version: 3, deployment: {} }))).toBe(0);
    expect(liveResources(doc(['pulumi:pulumi:Stack', 'pulumi:providers:pulumi-nodejs']))).toBe(0);
    expect(liveResources(doc(['pulumi:pulumi:Stack', 'pulumi-nodejs:dynamic:Resource']))).toBe(1);
  });
});
