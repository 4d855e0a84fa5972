/**
 * Build output for stack tests: what `./trellis images` leaves in `.trellis/images` (an OCI archive and
 * a build record per image), with tiny but real archives, so a stack config's `image: { build }` resolves
 * to a digest that the config check can verify against the archive.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { writeBuildRecord, writeOciArchive } from '@trellis/local/images';

/** The directories this file's tests made: removed when the test file ends. */
const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A build output directory and the digest recorded for each image in it. */
export interface TestBuildOutput {
  dir: string;
  digests: Record<string, string>;
}

/** Write a build output directory holding one small image per name. */
export function testBuildOutput(images: readonly string[]): TestBuildOutput {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-images-'));
  made.push(dir);
  const digests: Record<string, string> = {};
  for (const image of images) {
    const { archive, digest } = writeOciArchive({
      files: [{ name: 'app/server.mjs', data: `console.log(${JSON.stringify(image)});\n` }],
      user: '65532:65532',
    });
    writeFileSync(join(dir, `${image}.oci.tar`), archive);
    writeBuildRecord(dir, {
      image,
      digest,
      archive: `${image}.oci.tar`,
      config: 'sha256:' + '0'.repeat(64),
      user: '65532:65532',
      builder: 'test',
      sourceDateEpoch: 0,
    });
    digests[image] = digest;
  }
  return { dir, digests };
}
