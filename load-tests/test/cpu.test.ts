import { describe, expect, it } from 'vitest';
import { clockTicks, CpuSampler, cpuSeconds, cpuSecondsFromStat } from '../src/cpu.ts';

describe('k6 CPU from /proc', () => {
  it('reads utime + stime after a comm with spaces and parentheses', () => {
    const stat = '4242 (k6 (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000';
    expect(cpuSecondsFromStat(stat, 100)).toBe(3);
    expect(() => cpuSecondsFromStat('1 (x) S', 100)).toThrow('unexpected /proc stat line');
  });

  it('measures a real busy process (this one), bounded', async () => {
    expect(clockTicks()).toBeGreaterThan(0);
    expect(cpuSeconds(process.pid)).toBeGreaterThan(0);
    expect(cpuSeconds(2 ** 22 + 12345)).toBeNull();
    const s = new CpuSampler(process.pid, 100);
    s.start();
    const until = Date.now() + 600;
    let x = 0;
    for (let i = 0; i < 1e9 && Date.now() < until; i++) x += Math.sqrt(i);
    await new Promise((r) => setTimeout(r, 250));
    const u = s.stop();
    expect(x).toBeGreaterThan(0);
    expect(u).not.toBeNull();
    // Busy for 0.6 s of ~0.85 s (on a shared machine it gets what it gets): above zero, at most 2 cores.
    expect(u?.average).toBeGreaterThan(0.05);
    expect(u?.average).toBeLessThanOrEqual(2.1);
    expect(u?.seconds).toBeGreaterThan(0.5);
  });
});
