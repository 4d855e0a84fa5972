import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync, renameSync, rmSync } from 'node:fs';
import { FetchError } from './errors.ts';
import { progress } from './log.ts';

export interface DownloadOptions {
  /** Human name of the artefact, used in progress and errors, e.g. `Keycloak 26.4.7 (keycloak-quarkus-dist zip)`. */
  what: string;
  /** Registry name for errors, e.g. `Maven Central`. */
  registry: string;
  /** Expected SHA-1 or SHA-512 hex digest; verified when given. */
  sha1?: string;
  sha512?: string;
  /** Abort when no byte arrives for this long. @default 60_000 */
  idleTimeoutMs?: number;
}

/** Fetch text (small files: checksums, metadata). Throws FetchError naming the artefact. */
export async function fetchText(url: string, what: string, registry: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new FetchError(what, registry, `${url}: ${(err as Error).message}`);
  }
  if (!res.ok) throw new FetchError(what, registry, `${url}: HTTP ${res.status}`);
  return res.text();
}

/**
 * Stream `url` to `dest` with progress lines every few seconds and an idle timeout, verifying a
 * checksum when one is given. Writes to `dest.part` first, so a failed download leaves nothing.
 */
export async function download(url: string, dest: string, opts: DownloadOptions): Promise<void> {
  const idle = opts.idleTimeoutMs ?? 60_000;
  const ctrl = new AbortController();
  let timer = setTimeout(() => ctrl.abort(), idle);
  const part = `${dest}.part`;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: ctrl.signal });
    } catch (err) {
      throw new FetchError(opts.what, opts.registry, `${url}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body)
      throw new FetchError(opts.what, opts.registry, `${url}: HTTP ${res.status}`);
    const total = Number(res.headers.get('content-length') ?? 0);
    const out = createWriteStream(part);
    const sha1 = createHash('sha1');
    const sha512 = createHash('sha512');
    let got = 0;
    let lastReport = Date.now();
    progress(`downloading ${opts.what}${total ? ` (${mb(total)})` : ''}`);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = setTimeout(() => ctrl.abort(), idle);
        got += chunk.length;
        sha1.update(chunk);
        sha512.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        if (Date.now() - lastReport > 5_000) {
          lastReport = Date.now();
          progress(`  ${opts.what}: ${mb(got)}${total ? ` of ${mb(total)}` : ''}`);
        }
      }
    } catch (err) {
      throw new FetchError(
        opts.what,
        opts.registry,
        `${url}: stalled or broken after ${mb(got)} (${(err as Error).message})`,
      );
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
    if (opts.sha1 && sha1.digest('hex') !== opts.sha1.trim().toLowerCase())
      throw new FetchError(opts.what, opts.registry, `${url}: SHA-1 mismatch`);
    if (opts.sha512 && sha512.digest('hex') !== opts.sha512.trim().toLowerCase())
      throw new FetchError(opts.what, opts.registry, `${url}: SHA-512 mismatch`);
    renameSync(part, dest);
  } catch (err) {
    rmSync(part, { force: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** SHA-256 of a file, for pinning and reporting. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
