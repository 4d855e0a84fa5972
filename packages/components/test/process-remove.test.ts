// A LocalProcess's `removeBeforeStart`: what an earlier layout left under its directory goes before
// the next start, and nothing outside the directory is ever removed.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeBeforeStart } from '../src/local/process-impl.ts';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

function layout(): { dir: string; outside: string } {
  root = mkdtempSync(join(tmpdir(), 'trellis-remove-'));
  const dir = join(root, 'run', 'keycloak');
  mkdirSync(join(dir, 'home', 'data', 'h2'), { recursive: true });
  writeFileSync(join(dir, 'home', 'data', 'h2', 'keycloakdb.mv.db'), 'realm keys');
  mkdirSync(join(dir, 'pod'));
  const outside = join(root, 'run', 'other');
  mkdirSync(outside);
  return { dir, outside };
}

describe('removeBeforeStart', () => {
  it('removes the named paths under dir, and only them', () => {
    const { dir, outside } = layout();
    removeBeforeStart({ name: 'kc', dir, removeBeforeStart: ['home', 'absent'] });
    expect(existsSync(join(dir, 'home'))).toBe(false);
    expect(existsSync(join(dir, 'pod'))).toBe(true);
    expect(existsSync(outside)).toBe(true);
  });

  it('refuses a path that leaves dir, or dir itself, before removing anything', () => {
    const { dir, outside } = layout();
    expect(() =>
      removeBeforeStart({ name: 'kc', dir, removeBeforeStart: ['home', '../other'] }),
    ).toThrow(`kc: removeBeforeStart path '../other' must stay inside ${dir}`);
    expect(() => removeBeforeStart({ name: 'kc', dir, removeBeforeStart: ['./'] })).toThrow(
      `kc: removeBeforeStart path './' must stay inside ${dir}`,
    );
    expect(existsSync(join(dir, 'home'))).toBe(true);
    expect(existsSync(outside)).toBe(true);
  });
});
