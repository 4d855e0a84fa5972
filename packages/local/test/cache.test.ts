import { lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSymlink } from '../src/toolchain/cache.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ensureSymlink', () => {
  it('creates the link, keeps a right one, and replaces a wrong link, a file or a directory', () => {
    const link = join(dir, 'link');
    ensureSymlink('/target/a', link);
    expect(readlinkSync(link)).toBe('/target/a');
    const before = lstatSync(link).ino;
    ensureSymlink('/target/a', link);
    expect(lstatSync(link).ino).toBe(before); // untouched
    ensureSymlink('/target/b', link);
    expect(readlinkSync(link)).toBe('/target/b');
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    ensureSymlink('/target/c', file);
    expect(readlinkSync(file)).toBe('/target/c');
    const sub = join(dir, 'sub');
    mkdirSync(join(sub, 'deep'), { recursive: true });
    ensureSymlink('/target/d', sub);
    expect(readlinkSync(sub)).toBe('/target/d');
  });
});
