/** Progress lines go to stderr so that `--json` output on stdout stays clean. */
export function progress(msg: string): void {
  process.stderr.write(`\u001b[36m[trellis]\u001b[0m ${msg}\n`);
}
