/**
 * Connection URLs (`postgres://user:password@host:5432/db`, `redis://:password@host:6379/0`):
 * never shown with their password, and checked before a client reads them.
 *
 * The clients Sluice hands these URLs to (`pg` through `pg-connection-string`, and `ioredis`)
 * both read them with the WHATWG URL parser: the authority ends at the first `/`, `?` or `#`,
 * and within it the user-info ends at the last `@`. So a password may hold `@` and `:` as they
 * are, but one holding `@` and then `/`, `?` or `#` is cut short, and the rest of it becomes the
 * host name (sent to DNS), the database or a query parameter. libpq (`psql`) is stricter still:
 * its user-info ends at the first `@`. Such a URL cannot be read one way for sure (an `@` after
 * the host may belong to a database name or a query parameter), so {@link connectionUrlProblem}
 * rejects it and asks for the password to be percent-encoded, which every client decodes.
 * Messages, on the other hand, take the widest reading: {@link redactUrl} hides everything up
 * to the last `@` of the URL, so no part of such a password is ever shown.
 */

/** A URL's scheme with `://`, and the rest. */
const SCHEMED = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*)$/s;

/** What follows the user-info; where the user-info would end if it held no `/`, `?` or `#`. */
const AUTHORITY_END = /[/?#]/;

/** A query parameter that holds a password (`pg` reads `?password=`). */
const PASSWORD_PARAM = /([?&]password=)[^&#]*/gi;

/**
 * `url` with its password replaced by `***`, for logs and errors; `(unparsable URL)` when it is
 * not a `scheme://…` URL (the text itself might be a secret). The user-info is taken to end at
 * the last `@` of the URL, so a password holding `@`, `/`, `?` or `#` is hidden whole; a
 * `password=` query parameter is hidden too.
 *
 * @example
 * redactUrl('postgres://sluice:secret@db:5432/app'); // 'postgres://sluice:***@db:5432/app'
 * redactUrl('postgres://sluice:p@ss/w?rd@db/app'); // 'postgres://sluice:***@db/app'
 */
export function redactUrl(url: string): string {
  const m = SCHEMED.exec(url);
  if (m === null) return '(unparsable URL)';
  const scheme = m[1] as string;
  let rest = m[2] as string;
  const at = rest.lastIndexOf('@');
  let user = '';
  if (at >= 0) {
    const info = rest.slice(0, at);
    const colon = info.indexOf(':');
    user = `${colon < 0 ? info : `${info.slice(0, colon)}:***`}@`;
    rest = rest.slice(at + 1);
  }
  return `${scheme}${user}${rest.replace(PASSWORD_PARAM, '$1***')}`;
}

/**
 * The password of a `scheme://user:password@host…` URL as written and percent-decoded (the
 * forms a client's message might show), with the user-info taken to end at the last `@`;
 * empty when there is none.
 *
 * @example
 * urlPasswords('redis://:p%40ss@h:6379'); // ['p%40ss', 'p@ss']
 */
export function urlPasswords(url: string): string[] {
  const m = SCHEMED.exec(url);
  if (m === null) return [];
  const rest = m[2] as string;
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return [];
  const raw = rest.slice(colon + 1, at);
  if (raw === '') return [];
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: the client sees it as written.
  }
  return decoded === raw ? [raw] : [raw, decoded];
}

/**
 * Why the clients would misread connection URL `url`, or undefined when they read it as
 * written: a `/`, `?` or `#` before the last `@` (a password that needs percent-encoding), or
 * text that is no URL at all. The message never quotes the URL.
 *
 * @example
 * connectionUrlProblem('postgres://u:p%40ss%2Fx@db/app'); // undefined
 * connectionUrlProblem('postgres://u:p@ss/x@db/app'); // 'the user name or password holds …'
 */
export function connectionUrlProblem(url: string): string | undefined {
  const m = SCHEMED.exec(url);
  if (m === null) return 'is not a URL of the form `scheme://user:password@host:port/…`';
  const rest = m[2] as string;
  const end = rest.search(AUTHORITY_END);
  if (end >= 0 && rest.lastIndexOf('@') > end) {
    return (
      'has an `@` after a `/`, `?` or `#`, so the clients would cut the user name or password short there and read part of it as the host. ' +
      'Percent-encode these characters in the user name and password (`@` → `%40`, `/` → `%2F`, `?` → `%3F`, `#` → `%23`, `%` → `%25`), ' +
      'and an `@` in the database name or a query parameter as `%40`'
    );
  }
  try {
    new URL(url);
  } catch {
    return 'is not a valid URL (check the host and port, and percent-encode `%`, `#`, `/`, `?` and `@` in the password)';
  }
  return undefined;
}
