/**
 * The `http` lookup store: rows from an HTTP endpoint, one `GET` per key (`{key}` in the URL;
 * the step's `concurrency` bounds the requests in flight), or, with `batch: true`, one `POST` of
 * many keys (`{"keys": [...]}`) answered by an object of rows by key.
 */
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { redactUrl } from '../../core/url.ts';
import type { LookupProvider, LookupRows } from './provider.ts';

/** Options of {@link httpLookup}. */
export interface HttpLookupOptions {
  /**
   * Per key: a URL with `{key}` where the key goes (URL-encoded), answered with the row as JSON,
   * or 404 for none. With `batch`: the URL every batch is posted to.
   */
  readonly url: string;
  /** POST `{"keys": [k1, k2, …]}`; the answer is a JSON object `{ k1: row, … }` (an absent or null key: no row). */
  readonly batch?: boolean | undefined;
  /** Extra request headers (an API token: `${TOKEN}`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Longest one request may take, ms; a request that times out is retried. Default 10 s. */
  readonly timeoutMs?: number | undefined;
}

/**
 * A provider over HTTP; see the module comment. Connection failures, timeouts, 408, 429 and 5xx
 * answers are retried; other answers fail at once (and dead-letter their records).
 *
 * @example
 * const users = httpLookup({ url: 'http://users.internal/users/{key}' });
 */
export function httpLookup(options: HttpLookupOptions): LookupProvider {
  const batch = options.batch === true;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const shown = redactUrl(options.url);
  const headers = { accept: 'application/json', ...options.headers };

  const call = async (url: string, init: RequestInit, signal: AbortSignal): Promise<Response | undefined> => {
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        headers: { ...headers, ...init.headers },
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new SluiceError(
        ErrorCode.STAGE,
        `${init.method ?? 'GET'} ${redactUrl(url)}: ${errorMessage(err)}`,
        {},
        { cause: err, retryable: true },
      );
    }
    if (res.status === 404 && !batch) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      const text = (await res.text()).slice(0, 200);
      throw new SluiceError(
        ErrorCode.STAGE,
        `${init.method ?? 'GET'} ${redactUrl(url)}: HTTP ${res.status} ${text}`,
        { status: res.status },
        { retryable: res.status === 408 || res.status === 429 || res.status >= 500 },
      );
    }
    return res;
  };

  return {
    describe: `HTTP endpoint \`${shown}\``,
    ...(batch ? {} : { maxBatch: 1 }),
    async fetch(keys, signal): Promise<LookupRows> {
      const found = new Map<string, unknown>();
      if (!batch) {
        for (const k of keys) {
          const res = await call(options.url.replaceAll('{key}', encodeURIComponent(k)), {}, signal);
          if (res === undefined) continue;
          const row = (await res.json()) as unknown;
          if (row !== null) found.set(k, row);
        }
        return found;
      }
      const res = (await call(
        options.url,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ keys }) },
        signal,
      )) as Response;
      const body = (await res.json()) as unknown;
      if (body === null || typeof body !== 'object' || Array.isArray(body))
        throw new SluiceError(
          ErrorCode.STAGE,
          `POST ${shown}: the answer must be a JSON object of rows by key, got ${Array.isArray(body) ? 'an array' : typeof body}`,
        );
      for (const k of keys) {
        const row = (body as Record<string, unknown>)[k];
        if (row !== undefined && row !== null) found.set(k, row);
      }
      return found;
    },
  };
}
