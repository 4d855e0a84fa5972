/**
 * k6's own CPU, read from `/proc/<pid>/stat` (utime + stime of the whole process, all threads, in
 * clock ticks; proc(5)). If k6 needs most of a core, the latencies describe k6, not Trellis.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Share of one core above which the report warns that k6 may be the bottleneck. */
export const K6_CPU_WARN = 0.8;

let ticks: number | null = null;
/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux unless configured otherwise). */
export function clockTicks(): number {
  if (ticks === null) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }));
    } catch {
      ticks = 100;
    }
    if (!(ticks > 0)) ticks = 100;
  }
  return ticks;
}

/** utime + stime in seconds from the text of `/proc/<pid>/stat`. */
export function cpuSecondsFromStat(stat: string, hz = clockTicks()): number {
  // Field 2 (comm) is in parentheses and may hold spaces; count fields after its closing paren.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After comm: state is field 3, so utime (field 14) is rest[11] and stime (field 15) rest[12].
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`unexpected /proc stat line: ${stat.slice(0, 80)}`);
  return (utime + stime) / hz;
}

/** CPU seconds used so far by `pid`, or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** What {@link CpuSampler} measured between `start()` and `stop()`. */
export interface CpuUsage {
  /** Average share of one core over the window (1 = one full core). */
  average: number;
  /** Highest share of one core over any one sampling interval. */
  peak: number;
  /** Window length in seconds. */
  seconds: number;
  samples: number;
}

/** Samples one process's CPU once a second between `start()` and `stop()`. */
export class CpuSampler {
  private readonly pid: number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private first: { t: number; cpu: number } | null = null;
  private last: { t: number; cpu: number } | null = null;
  private peak = 0;
  private samples = 0;

  constructor(pid: number, intervalMs = 1_000) {
    this.pid = pid;
    this.intervalMs = intervalMs;
  }

  /** Begin the window (idempotent). */
  start(): void {
    if (this.first) return;
    const cpu = cpuSeconds(this.pid);
    if (cpu === null) return;
    this.first = this.last = { t: performance.now(), cpu };
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const cpu = cpuSeconds(this.pid);
    if (cpu === null || !this.last) return;
    const now = { t: performance.now(), cpu };
    const dt = (now.t - this.last.t) / 1000;
    if (dt > 0) this.peak = Math.max(this.peak, (now.cpu - this.last.cpu) / dt);
    this.last = now;
    this.samples++;
  }

  /** End the window; null when it never started (the process was gone). */
  stop(): CpuUsage | null {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.first) return null;
    this.sample();
    const last = this.last ?? this.first;
    const seconds = (last.t - this.first.t) / 1000;
    if (seconds <= 0) return null;
    return {
      average: (last.cpu - this.first.cpu) / seconds,
      peak: this.peak,
      seconds,
      samples: this.samples,
    };
  }
}

/**
 * CPU nanoseconds used so far by every thread of `pid` (the first field of each
 * `/proc/<pid>/task/<tid>/schedstat`: time on a CPU, in ns; proc(5)), or null when it is gone.
 * Nanoseconds, not the 10 ms clock ticks of `stat`: a gate block of a few seconds spends only tens
 * of milliseconds in one component, which ticks would round by ±10 ms. Threads that exited in the
 * window are not counted (Envoy's and Node's threads live as long as the process).
 */
export function cpuNanos(pid: number): number | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited while we looked
    }
  }
  return ns;
}
