/**
 * A vitest reporter for `./trellis test`: each test file's whole time, set-up included (import,
 * collection, beforeAll/afterAll hooks and tests), written as JSON to `$TRELLIS_FILE_TIMES`. vitest's
 * JSON report gives only the time inside tests, which leaves out what makes a real-server suite slow:
 * starting its servers. CI's log then names the files that cost the most (docs/toolchain.md).
 */
import { writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

/** One file's time in seconds, by phase. */
export interface FileTime {
  file: string;
  /** Import and collection (module top level, suite callbacks), environment and runner set-up. */
  loadS: number;
  /** Tests and hooks (beforeAll/afterAll included). */
  runS: number;
  totalS: number;
}

export default class FileTimesReporter implements Reporter {
  private readonly times: FileTime[] = [];

  onTestModuleEnd(testModule: TestModule): void {
    const d = testModule.diagnostic();
    const loadS =
      (d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration) / 1000;
    const runS = d.duration / 1000;
    this.times.push({ file: testModule.moduleId, loadS, runS, totalS: loadS + runS });
  }

  onTestRunEnd(): void {
    const out = process.env.TRELLIS_FILE_TIMES;
    if (out) writeFileSync(out, `${JSON.stringify(this.times, null, 1)}\n`);
  }
}
