/**
 * Running buildah for `./trellis images`: no daemon, no root. As a normal user it runs inside a user
 * namespace where that user is uid 0 (`unshare --user --map-root-user`), which is all buildah needs when
 * no Containerfile step executes anything (no RUN): it only copies files and writes layers. Storage is
 * a private `vfs` store under the build directory, so nothing outside it is touched.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../toolchain/exec.ts';

// Images are only ever read from the local store or from archives we wrote: accept them unsigned.
const POLICY = JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] });

/** A buildah with its own storage. */
export class Buildah {
  readonly bin: string;
  private readonly dir: string;
  private readonly policy: string;

  /** `bin` is the wrapper the toolchain installs; `dir` holds the storage and temp files. */
  constructor(bin: string, dir: string) {
    this.bin = bin;
    this.dir = dir;
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    this.policy = join(dir, 'policy.json');
    writeFileSync(this.policy, POLICY);
  }

  /** The `--signature-policy` argument pair for commands that take one. */
  get policyArgs(): string[] {
    return ['--signature-policy', this.policy];
  }

  /**
   * Remove the storage and temp files. As a normal user, inside the same kind of user namespace: the
   * store holds directories without write permission that only the namespace's root may empty.
   */
  async remove(): Promise<void> {
    if (process.getuid?.() === 0) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    await run('unshare', ['--user', '--map-root-user', '--', 'rm', '-rf', this.dir], {
      what: `remove ${this.dir}`,
      timeoutMs: 300_000,
    });
  }

  /** Run `buildah <args>` with this storage; resolves its output. */
  async run(args: readonly string[], what: string, timeoutMs = 900_000): Promise<string> {
    const global = [
      '--root',
      join(this.dir, 'storage'),
      '--runroot',
      join(this.dir, 'run'),
      '--storage-driver',
      'vfs',
    ];
    const asRoot = process.getuid?.() === 0;
    const [cmd, argv] = asRoot
      ? [this.bin, [...global, ...args]]
      : ['unshare', ['--user', '--map-root-user', '--', this.bin, ...global, ...args]];
    return run(cmd, argv, {
      what,
      timeoutMs,
      // buildah writes large temporary files under TMPDIR (default /var/tmp).
      env: { ...process.env, TMPDIR: join(this.dir, 'tmp'), BUILDAH_ISOLATION: 'chroot' },
    });
  }
}
