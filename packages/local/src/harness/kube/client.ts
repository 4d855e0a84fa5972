/** A small HTTPS client for the Kubernetes API with a client certificate: enough for tests and readiness. */
import { Agent, request } from 'node:https';

/** A non-2xx answer from the API server, with its Status message. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number;
  readonly reason: string | undefined;
  constructor(method: string, path: string, status: number, body: string) {
    let message = body.trim().slice(0, 500);
    let reason: string | undefined;
    try {
      const parsed = JSON.parse(body) as { message?: string; reason?: string };
      message = parsed.message ?? message;
      reason = parsed.reason;
    } catch {
      // not a Status object: keep the raw text
    }
    super(`${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

/** How to reach and authenticate to the API server. */
export interface KubeClientOptions {
  /** `https://127.0.0.1:<port>`. */
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  /** Per request. @default 30_000 */
  timeoutMs?: number;
}

/** The raw answer of one request. */
export interface KubeResponse {
  status: number;
  body: string;
}

/** JSON over HTTPS to one API server; `close()` drops its kept-alive connections. */
export class KubeClient {
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(opts: KubeClientOptions) {
    this.base = new URL(opts.server);
    if (this.base.protocol !== 'https:')
      throw new Error(`server must be https, got ${opts.server}`);
    this.agent = new Agent({
      ca: opts.caPem,
      cert: opts.certPem,
      key: opts.keyPem,
      keepAlive: true,
    });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** One request; resolves any HTTP status, rejects on network errors and timeouts. */
  raw(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<KubeResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.base),
        {
          method,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: {
            accept: 'application/json',
            ...(payload !== undefined
              ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request whose answer must be 2xx; returns the parsed JSON body. */
  async json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.raw(method, path, body, contentType);
    if (res.status < 200 || res.status > 299)
      throw new KubeApiError(method, path, res.status, res.body);
    return JSON.parse(res.body) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  create<T>(collection: string, obj: unknown): Promise<T> {
    return this.json<T>('POST', collection, obj);
  }

  /** Server-side apply (field manager `trellis-test`), creating or updating `path`. */
  apply<T>(path: string, obj: unknown): Promise<T> {
    const sep = path.includes('?') ? '&' : '?';
    return this.json<T>(
      'PATCH',
      `${path}${sep}fieldManager=trellis-test&force=true`,
      obj,
      'application/apply-patch+yaml',
    );
  }

  delete<T>(path: string): Promise<T> {
    return this.json<T>('DELETE', path);
  }

  close(): void {
    this.agent.destroy();
  }
}
