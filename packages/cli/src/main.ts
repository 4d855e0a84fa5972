/**
 * `./trellis <verb>`: the one entry for a platform team. The bash wrapper has already made sure that
 * Node 24 and the workspace dependencies are present; each verb installs the rest of what it needs.
 */
interface Verb {
  summary: string;
  usage: string;
  /** Loaded on demand, so `--help` and one verb never pay for the others' imports. */
  run(args: string[]): Promise<number>;
}

const verbs: Record<string, Verb> = {
  up: {
    summary: 'install the toolchain, then bring the local stack up (pulumi up --stack local)',
    usage: 'up',
    run: async (a) => (await import('./verbs/up.ts')).up(a),
  },
  down: {
    summary: 'take the local stack down (pulumi destroy --stack local)',
    usage: 'down',
    run: async (a) => (await import('./verbs/up.ts')).down(a),
  },
  token: {
    summary: 'print a real access token from the local Keycloak for a demo user or agent',
    usage: 'token --as <user|agent> [--stack S]',
    run: async (a) => (await import('./verbs/token.ts')).token(a),
  },
  test: {
    summary: 'run every test: format, lint, types, unit, component (real servers)',
    usage: 'test [vitest filters...]',
    run: async (a) => (await import('./verbs/test.ts')).test(a),
  },
  doctor: {
    summary:
      'list every pinned component with pinned and found versions; non-zero if any is missing',
    usage: 'doctor [--json]',
    run: async (a) => (await import('./verbs/doctor.ts')).doctor(a),
  },
  load: {
    summary:
      "k6 load test gated on the model's budgets (exit 99 on a breach); reports/<timestamp>/; --help",
    usage: 'load [--scenario S] [--stack S] [--rps N] [--duration D]',
    run: async (a) => (await import('./verbs/load.ts')).load(a),
  },
  images: {
    summary:
      "build the services' OCI images with buildah (no daemon) into .trellis/images; print digests",
    usage: 'images [service...] [--update-base]',
    run: async (a) => (await import('./verbs/images.ts')).images(a),
  },
  audit: {
    summary:
      "one timeline from the local stack's access, audit and event logs, by request id, subject or identity",
    usage: 'audit [--request-id ID] [--subject S] [--identity I] [--since 15m] [--json]',
    run: async (a) => (await import('./verbs/audit.ts')).audit(a),
  },
  policy: {
    summary: 'check a policy model, or render it for a target',
    usage: 'policy check|render <model.yaml> [--target T] [--out DIR]',
    run: async (a) => (await import('./verbs/policy.ts')).policy(a),
  },
};

function help(): string {
  const width = Math.max(...Object.values(verbs).map((v) => v.usage.length));
  const lines = Object.values(verbs).map((v) => `  ${v.usage.padEnd(width)}  ${v.summary}`);
  return `Usage: ./trellis <verb> [options]\n\nVerbs:\n${lines.join('\n')}\n\nThe tool cache is ${process.env.TRELLIS_CACHE ?? '~/.cache/trellis'} (set TRELLIS_CACHE to move it).\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const verb = verbs[name];
  if (!verb) {
    process.stderr.write(`trellis: unknown verb '${name}'\n\n${help()}`);
    return 2;
  }
  return verb.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `\u001b[31m[trellis] error:\u001b[0m ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
