import { spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ensureSymlink,
  installAtomically,
  isInstalled,
  lockOwner,
} from '../src/toolchain/cache.ts';

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

describe('installAtomically: the install lock', () => {
  const startOf = (pid: number): string => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  };
  const build = (staging: string): Promise<void> => {
    writeFileSync(join(staging, 'bin'), 'x');
    return Promise.resolve();
  };

  it('waits while the process named in the lock runs, then installs once it is gone', async () => {
    const tool = join(dir, 'live', '1.0.0');
    mkdirSync(`${tool}.lock`, { recursive: true });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = other.pid!;
    writeFileSync(join(`${tool}.lock`, 'owner'), `${pid} ${startOf(pid)}\n`);
    expect(lockOwner(`${tool}.lock`)).toEqual({ pid, alive: true });
    let done = false;
    const install = installAtomically(tool, build).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(done).toBe(false);
    expect(isInstalled(tool)).toBe(false);
    other.kill('SIGKILL');
    await install;
    expect(isInstalled(tool)).toBe(true);
    expect(existsSync(`${tool}.lock`)).toBe(false);
  });

  it('takes over at once a lock whose owner died (a killed install), and one whose pid was reused', async () => {
    const dead = spawn('true', { stdio: 'ignore' });
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    const tool = join(dir, 'dead', '1.0.0');
    mkdirSync(`${tool}.lock`, { recursive: true });
    writeFileSync(join(`${tool}.lock`, 'owner'), `${deadPid} 12345\n`);
    expect(lockOwner(`${tool}.lock`)?.alive).toBe(false);
    await installAtomically(tool, build);
    expect(isInstalled(tool)).toBe(true);
    // This process's own pid with another start time: a reused pid, not the owner.
    const reused = join(dir, 'reused', '1.0.0');
    mkdirSync(`${reused}.lock`, { recursive: true });
    writeFileSync(join(`${reused}.lock`, 'owner'), `${process.pid} 1\n`);
    expect(lockOwner(`${reused}.lock`)).toEqual({ pid: process.pid, alive: false });
    await installAtomically(reused, build);
    expect(isInstalled(reused)).toBe(true);
  });
});
