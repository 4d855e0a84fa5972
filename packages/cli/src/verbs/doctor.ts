import { tools } from '@trellis/local/toolchain';
import type { ToolCheck } from '@trellis/local/toolchain';

/** `doctor [--json]`: every component, pinned vs found, and whether it runs. Exit 1 if any is not usable. */
export async function doctor(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const checks: ToolCheck[] = [];
  for (const t of tools) checks.push(await t.check());
  const ok = checks.every((c) => c.found !== null && c.runs && !c.problem);
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok, components: checks }, null, 2)}\n`);
  } else {
    const rows = [['component', 'pinned', 'minimum', 'found', 'runs', 'location / problem']];
    for (const c of checks)
      rows.push([
        c.name,
        c.pinned,
        c.minimum,
        c.found ?? 'missing',
        c.runs ? 'yes' : 'no',
        c.problem ?? c.location ?? '',
      ]);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows)
      process.stdout.write(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
    process.stdout.write(
      ok
        ? '\nall components present\n'
        : '\nsome components are missing: run ./trellis up (or ./trellis test) to install them\n',
    );
  }
  return ok ? 0 : 1;
}
