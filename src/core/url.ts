/**
 * Connection URLs in messages: never with their password.
 */

/**
 * `url` with its password replaced by `***`, for logs and errors; `(unparsable URL)` when it is
 * not a URL (the text itself might be a secret).
 *
 * @example
 * redactUrl('postgres://sluice:secret@db:5432/app'); // 'postgres://sluice:***@db:5432/app'
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
