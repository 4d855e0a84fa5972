// The cloud stacks' PKI and generated passwords under the real Pulumi engine: our dynamic providers run
// in the dynamic-provider host, with automatic plugin downloads off, so a leftover @pulumi/tls or
// @pulumi/random resource would fail the run. Keys and passwords must be ciphertext in the state.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pulumiEnv } from '@trellis/local/toolchain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/pki/', import.meta.url));
const COMPONENTS = fileURLToPath(new URL('../', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = '';
let program = '';
let bin = '';
let env: NodeJS.ProcessEnv = {};

function pulumiRun(args: readonly string[], timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      bin,
      [...args, '--non-interactive'],
      { cwd: program, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await pulumiRun(args);
  if (r.code !== 0)
    throw new Error(`pulumi ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-pki-'));
  program = join(dir, 'program');
  const tool = await pulumiEnv({ home: join(dir, 'pulumi-home') });
  bin = tool.bin;
  env = { ...tool.env, PULUMI_CONFIG_PASSPHRASE: 'component-test-only' };
  cpSync(FIXTURE, program, { recursive: true });
  // In the repo the fixture imports @trellis/components by the package's self-reference (so it is
  // type-checked with the rest); in its own directory it is an ES module program of its own.
  writeFileSync(
    join(program, 'package.json'),
    JSON.stringify({
      name: 'trellis-pki-fixture',
      private: true,
      type: 'module',
      main: 'index.ts',
    }),
  );
  // The program sees @pulumi/pulumi and @trellis/components as infra/k8s does: from node_modules.
  mkdirSync(join(program, 'node_modules', '@pulumi'), { recursive: true });
  mkdirSync(join(program, 'node_modules', '@trellis'), { recursive: true });
  symlinkSync(
    join(COMPONENTS, 'node_modules', '@pulumi', 'pulumi'),
    join(program, 'node_modules', '@pulumi', 'pulumi'),
  );
  symlinkSync(COMPONENTS, join(program, 'node_modules', '@trellis', 'components'));
  mkdirSync(join(dir, 'state'));
  await ok(['login', `file://${join(dir, 'state')}`]);
  await ok(['stack', 'init', 'dev', '--secrets-provider', 'passphrase']);
}, 90 * 60_000);

afterAll(async () => {
  if (bin && existsSync(join(program, 'Pulumi.dev.yaml'))) await pulumiRun(['destroy', '--yes']);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mesh PKI and passwords as dynamic resources (real engine)', () => {
  let shown: Record<string, unknown> = {};

  it('pulumi up makes a root, an intermediate it signs, and a password, with no plugin', async () => {
    const up = await pulumiRun(['up', '--yes', '--skip-preview']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    shown = JSON.parse(await ok(['stack', 'output', '--json', '--show-secrets'])) as Record<
      string,
      unknown
    >;
    const root = new X509Certificate(shown.rootCertPem as string);
    const mesh = new X509Certificate(shown.meshCertPem as string);
    expect(root.ca).toBe(true);
    expect(mesh.ca).toBe(true);
    expect(mesh.verify(root.publicKey)).toBe(true);
    expect(mesh.subject).toContain('CN=trellis.example prod-us mesh intermediate');
    const cacerts = shown.cacerts as Record<string, string>;
    expect(cacerts['ca-key.pem']).toBe(shown.meshKeyPem);
    expect(shown.storePassword).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it('keeps keys and the password secret: in outputs, and as ciphertext in the state', async () => {
    const hidden = JSON.parse(await ok(['stack', 'output', '--json'])) as Record<string, unknown>;
    for (const k of ['rootKeyPem', 'meshKeyPem', 'cacerts', 'storePassword'])
      expect(hidden[k], k).toBe('[secret]');
    expect(hidden.rootCertPem).toBe(shown.rootCertPem);
    const state = await ok(['stack', 'export']);
    expect(state).not.toMatch(/PRIVATE KEY/);
    expect(state).not.toContain(shown.storePassword as string);
    const deployment = JSON.parse(state) as {
      deployment: { resources: { type: string; inputs?: { __provider?: string } }[] };
    };
    const dynamic = deployment.deployment.resources.filter((r) =>
      r.type.startsWith('pulumi-nodejs:dynamic/'),
    );
    expect(dynamic.map((r) => r.type).sort()).toEqual([
      'pulumi-nodejs:dynamic/trellis-k8s:GeneratedPassword',
      'pulumi-nodejs:dynamic/trellis-pki:IntermediateCa',
      'pulumi-nodejs:dynamic/trellis-pki:RootCa',
    ]);
    // The provider is serialized into every resource's state: it must stay small.
    for (const r of dynamic) {
      const size = r.inputs?.__provider?.length ?? 0;
      expect(size, r.type).toBeGreaterThan(100);
      expect(size, r.type).toBeLessThan(8_000);
    }
    const providers = deployment.deployment.resources.filter((r) =>
      r.type.startsWith('pulumi:providers:'),
    );
    expect(providers.map((r) => r.type)).toEqual(['pulumi:providers:pulumi-nodejs']);
  });

  it('a second run finds no changes, and destroy removes everything', async () => {
    const preview = await pulumiRun(['preview', '--expect-no-changes']);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const destroy = await pulumiRun(['destroy', '--yes', '--skip-preview']);
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    const state = JSON.parse(await ok(['stack', 'export'])) as {
      deployment: { resources?: unknown[] };
    };
    expect(state.deployment.resources ?? []).toEqual([]);
  });
});
