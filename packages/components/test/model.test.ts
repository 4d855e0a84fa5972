import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelFile, ModelFileError, referenceModelPath } from '../src/model.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-model-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): ModelFileError {
  try {
    f();
  } catch (err) {
    if (err instanceof ModelFileError) return err;
    throw err;
  }
  throw new Error('expected a ModelFileError');
}

describe('loadModelFile', () => {
  it('reads and validates the reference model', () => {
    const model = loadModelFile(referenceModelPath);
    expect(model.trustDomain).toBe('trellis.local');
    expect(Object.keys(model.workloads)).toContain('orders-api');
  });

  it('names the file, the errno code and the setting when the file cannot be read', () => {
    const missing = join(dir, 'missing.yaml');
    const err = thrown(() => loadModelFile(missing, 'trellis:modelPath'));
    expect(err.code).toBe('ENOENT');
    expect(err.errors).toEqual([]);
    expect(err.path).toBe(missing);
    expect(err.message).toMatch(
      new RegExp(`^trellis:modelPath: cannot read the model at ${missing}: ENOENT`),
    );
  });

  it('lists every validation error with its path, and produces no model', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      readFileSync(referenceModelPath, 'utf8').replace(
        'trustDomain: trellis.local',
        'trustDomain: Not A Domain',
      ),
    );
    const err = thrown(() => loadModelFile(bad));
    expect(err.code).toBeUndefined();
    expect(err.errors.map((e) => e.path)).toContain('trustDomain');
    expect(err.message.split('\n')[0]).toBe(`${bad} is invalid:`);
    expect(err.message).toContain('\ntrustDomain: ');
  });
});
