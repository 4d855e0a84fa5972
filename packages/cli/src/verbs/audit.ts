/**
 * `./trellis audit [--request-id ID] [--subject SUB] [--identity ID] [--since 15m|ISO] [--json]
 * [--stack S | --dir DIR]`: one timeline from the local stack's logs (docs/observability.md): the
 * sidecars' access logs, nginx's, the services', Cassandra's audit log, Kafka's authorizer log and
 * Keycloak's events, each line normalised by `audit-trail.ts`.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { auditLogFiles, sidecarFiles } from '@trellis/contracts';
import {
  formatTable,
  parseLog,
  parseSince,
  timeline,
  type AuditFilter,
  type AuditRecord,
  type LogKind,
} from '../audit-trail.ts';
import { stackDir } from '../stack.ts';
import { stackArg } from './up.ts';

const usage =
  'usage: ./trellis audit [--request-id ID] [--subject SUB] [--identity ID] [--since 15m|ISO-time] [--json] [--stack S | --dir DIR]';

/** What `./trellis audit` was asked. */
export interface AuditArgs {
  filter: AuditFilter;
  json: boolean;
  /** The stack's directory (its `run/` holds the logs). */
  dir: string;
}

const valued = ['--request-id', '--subject', '--identity', '--since', '--stack', '--dir'];
/** `--request` is what issue 15's acceptance names; the same as `--request-id`. */
const aliases: Record<string, string> = { '--request': '--request-id' };

/** The arguments, checked; `nowMs` anchors a `--since` duration. */
export function parseAuditArgs(args: string[], nowMs: number): AuditArgs {
  const values: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const given = args[i] ?? '';
    const a = aliases[given] ?? given;
    if (a === '--json') json = true;
    else if (valued.includes(a)) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--'))
        throw new Error(`${given} needs a value; ${usage}`);
      values[a] = v;
      i++;
    } else throw new Error(`unknown argument '${given}' (argument ${i + 1}); ${usage}`);
  }
  if (values['--stack'] !== undefined && values['--dir'] !== undefined)
    throw new Error(`--stack and --dir: give one; ${usage}`);
  const filter: AuditFilter = {};
  if (values['--request-id'] !== undefined) filter.requestId = values['--request-id'];
  if (values['--subject'] !== undefined) filter.subject = values['--subject'];
  if (values['--identity'] !== undefined) filter.identity = values['--identity'];
  if (values['--since'] !== undefined) filter.sinceMs = parseSince(values['--since'], nowMs);
  return { filter, json, dir: values['--dir'] ?? stackDir(stackArg(args)) };
}

/** A log file of the stack: what wrote it, and which parser reads it. */
export interface LogFile {
  path: string;
  kind: LogKind;
  component: string;
}

/** The stack's log files that exist, under `<dir>/run/<component>/`. */
export function logFilesOf(dir: string): LogFile[] {
  const run = join(dir, 'run');
  if (!existsSync(run))
    throw new Error(`no logs at ${run}: is the stack up (./trellis up), or is --dir wrong?`);
  const out: LogFile[] = [];
  // A component in a pod writes in its pod's own directory, `<dir>/pod` (ADR 0012); on the host, in
  // its dir. Both are looked at, so the trail reads either kind of stack.
  const add = (component: string, rel: string, kind: LogKind) => {
    for (const path of [join(run, component, rel), join(run, component, 'pod', rel)])
      if (existsSync(path)) out.push({ path, kind, component });
  };
  for (const c of readdirSync(run).sort()) {
    add(c, auditLogFiles.process, 'process');
    if (c.endsWith('-sidecar')) {
      add(c, sidecarFiles.accessLog, 'envoy');
    }
    if (c === 'nginx') add(c, auditLogFiles.nginx, 'nginx');
    if (c === 'cassandra') add(c, auditLogFiles.cassandra, 'cassandra-audit');
    if (c === 'kafka')
      for (const suffix of ['.3', '.2', '.1', ''])
        add(c, `${auditLogFiles.kafkaAuthorizer}${suffix}`, 'kafka-authorizer');
  }
  return out;
}

/** Every record in the stack's logs. */
export function readAudit(dir: string): AuditRecord[] {
  return logFilesOf(dir).flatMap((f) =>
    parseLog(f.kind, f.component, readFileSync(f.path, 'utf8')),
  );
}

/** The verb: prints the timeline (text or JSON lines); exit 1 when nothing matched. */
export async function audit(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const a = parseAuditArgs(args, Date.now());
  const records = timeline(readAudit(a.dir), a.filter);
  if (a.json) for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
  else process.stdout.write(formatTable(records));
  if (records.length === 0) process.stderr.write('[trellis] audit: no record matched\n');
  return records.length === 0 ? 1 : 0;
}
