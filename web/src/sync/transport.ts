/**
 * HTTP to the CivicSync server with fetch: JSON bodies (gzip-compressed above 1 KiB where the
 * platform has CompressionStream), `Authorization: Bearer`, error bodies turned into
 * CivicSyncError. A fetch that throws (offline, aborted, timed out, reset) is a network failure:
 * CivicSyncError with code OFFLINE and status 0. Never retries on its own: retrying a push is the
 * sync's decision.
 */
import { CivicSyncError } from './api';

export const OFFLINE = 'OFFLINE';

/** A server error, with the seconds a 429 asks to wait. */
export class ServerError extends CivicSyncError {
  constructor(
    code: string,
    message: string,
    field: string | undefined,
    status: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message, field, status);
  }
}

export function isNetworkFailure(e: unknown): boolean {
  return e instanceof CivicSyncError && e.code === OFFLINE;
}

export interface RequestOptions {
  readonly method?: 'GET' | 'POST';
  readonly token?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

const COMPRESS_ABOVE = 1024;

export class Transport {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchFn: typeof fetch,
  ) {}

  url(path: string): string {
    return this.baseUrl.replace(/\/+$/, '') + path;
  }

  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json', ...(options.headers ?? {}) };
    if (options.token) headers['Authorization'] = 'Bearer ' + options.token;
    let body: BodyInit | undefined;
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = options.body;
      if (options.body.length > COMPRESS_ABOVE && typeof CompressionStream === 'function') {
        try {
          body = await gzip(options.body);
          headers['Content-Encoding'] = 'gzip';
        } catch {
          body = options.body;
        }
      }
    }
    const timeout = options.timeoutMs ?? 120_000;
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    const timer = controller ? setTimeout(() => controller.abort(), timeout) : undefined;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchFn(this.url(path), {
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        body,
        signal: controller?.signal,
        credentials: 'omit',
        redirect: 'error',
      });
      text = await response.text();
    } catch (e) {
      throw new CivicSyncError(OFFLINE, 'The server could not be reached: ' + (e instanceof Error ? e.message : String(e)), undefined, 0);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    if (response.ok) {
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ServerError('MALFORMED_RESPONSE', 'the server sent a response that is not JSON', undefined, response.status);
      }
    }
    let error: { code?: string; message?: string; field?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    const retryAfter = Number(response.headers.get('Retry-After'));
    throw new ServerError(
      error?.code ?? (response.status >= 500 ? 'INTERNAL' : 'HTTP_' + response.status),
      error?.message ?? `HTTP ${response.status}`,
      error?.field,
      response.status,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    );
  }
}

async function gzip(text: string): Promise<Blob> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Response(stream).blob();
}
