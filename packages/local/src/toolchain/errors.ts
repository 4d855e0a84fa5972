/** A tool or artefact could not be fetched: names what and from which registry, never hangs. */
export class FetchError extends Error {
  override readonly name = 'FetchError';
  readonly what: string;
  readonly registry: string;
  constructor(what: string, registry: string, cause: string) {
    super(`could not fetch ${what} from ${registry}: ${cause}`);
    this.what = what;
    this.registry = registry;
  }
}

/** A command the installer or harness ran failed; carries the tail of its output. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly output: string;
  constructor(what: string, detail: string, output: string) {
    const tail = output.split('\n').slice(-25).join('\n');
    super(`${what} failed: ${detail}${tail ? `\n--- last output ---\n${tail}` : ''}`);
    this.output = output;
  }
}
