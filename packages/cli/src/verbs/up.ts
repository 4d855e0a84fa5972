import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureAll } from '@trellis/local/toolchain';

const ROOT = resolve(import.meta.dirname, '../../../..');

/** `up`: install the toolchain, then bring the local stack up. */
export async function up(_args: string[]): Promise<number> {
  await ensureAll();
  if (!existsSync(join(ROOT, 'infra', 'local', 'Pulumi.yaml'))) {
    process.stderr.write(
      '[trellis] toolchain ready (see ./trellis doctor). The local stack (infra/local) is not built yet: ' +
        'it lands with the `pulumi up --stack local` issue.\n',
    );
    return 0;
  }
  throw new Error('infra/local exists but `up` does not drive it yet');
}

/** `down`: take the local stack down. */
export async function down(_args: string[]): Promise<number> {
  if (!existsSync(join(ROOT, 'infra', 'local', 'Pulumi.yaml'))) {
    process.stderr.write(
      '[trellis] nothing to take down: the local stack (infra/local) is not built yet.\n',
    );
    return 0;
  }
  throw new Error('infra/local exists but `down` does not drive it yet');
}
