/**
 * One HTTP request per record, for the YAML `mapAsync` step: the record goes out as JSON, the
 * JSON answer comes back as the record (or into one of its fields).
 */
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { redactUrl } from '../core/url.ts';
import type { AsyncFn } from './async.ts';

/** Options of {@link httpRecordCall}. */
export interface HttpRecordCallOptions {
  /** The endpoint every record is sent to. */
  readonly url: string;
  /** `POST` (default), `PUT` or `PATCH` send the record as the JSON body; `GET` sends none. */
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | undefined;
  /** Extra request headers (an API token: `${TOKEN}`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Longest one request may take, ms. Default 10 s. */
  readonly timeoutMs?: number | undefined;
  /** Put the answer into this field of the record instead of replacing the record with it. */
  readonly into?: string | undefined;
}

// BigInt (exact money) goes out as its digits, not as an error.
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

/**
 * A per-record call for {@link mapAsync}: sends the record, resolves to the JSON answer (or the
 * record with the answer in `into`); an empty answer (204) keeps the record as it was. A failed
 * connection, a timeout or a non-2xx answer rejects with a `SLUICE_RECORD` error naming the
 * method, the URL (credentials hidden) and the status, so the record is dead-lettered.
 *
 * @example
 * stream.via(mapAsync(httpRecordCall({ url: 'http://scorer.internal/score', into: 'score' }), { concurrency: 16 }));
 */
export function httpRecordCall(options: HttpRecordCallOptions): AsyncFn<unknown, unknown> {
  const method = options.method ?? 'POST';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const what = `${method} ${redactUrl(options.url)}`;
  const headers = { accept: 'application/json', 'content-type': 'application/json', ...options.headers };
  return async (record, signal) => {
    let text: string;
    try {
      const res = await fetch(options.url, {
        method,
        headers,
        ...(method === 'GET' ? {} : { body: json(record) }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
      text = await res.text();
      if (!res.ok)
        throw new SluiceError(ErrorCode.RECORD, `${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
    } catch (err) {
      if (err instanceof SluiceError || signal.aborted) throw err;
      throw new SluiceError(ErrorCode.RECORD, `${what}: ${errorMessage(err)}`, {}, { cause: err });
    }
    if (text === '') return record;
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch (err) {
      throw new SluiceError(ErrorCode.RECORD, `${what}: the answer is not JSON (${errorMessage(err)})`);
    }
    return options.into === undefined ? answer : { ...(record as object), [options.into]: answer };
  };
}
