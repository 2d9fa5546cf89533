/**
 * Values that must never leave the process: every value a pipeline file took from an
 * environment variable (`${VAR}`), and the password of every connection URL among them.
 *
 * What counts as a secret: all substituted values, not only those of variables named
 * `*PASSWORD*` or of fields declared secret. A file has no reliable way to say which of its
 * variables hold secrets (a token ends up in a path, a password in a whole `${DATABASE_URL}`),
 * and replacing a harmless value by the `${VAR}` it came from costs nothing: the message still
 * says where the value came from. Values shorter than {@link MIN_SECRET_LENGTH} are left alone:
 * they are too common in text (`10`, `true`) to be found safely, and are no secret.
 *
 * Redaction is by text: {@link redactSecrets} replaces each known value in a message. It is
 * applied where text leaves the process: the CLI's stdout and stderr (config problems, errors,
 * logs, status lines), the default logger of a run, and the error of each dead letter. Record
 * contents are user data and are never changed.
 */

/** Values shorter than this are not redacted. */
export const MIN_SECRET_LENGTH = 4;

/** Known secret values, each with the text that replaces it. */
const secrets = new Map<string, string>();
/** `secrets` longest first, so a value that contains another one is replaced whole. */
let ordered: [string, string][] = [];

/**
 * Remembers `value` as a secret for the rest of the process: {@link redactSecrets} replaces it
 * by `replacement` (e.g. `${PG_URL}`, or `***`). Short values are ignored (see the module
 * comment); a value registered twice keeps its first replacement.
 *
 * @example
 * registerSecret('hunter2!', '${PGPASSWORD}');
 * redactSecrets('password hunter2! rejected'); // 'password ${PGPASSWORD} rejected'
 */
export function registerSecret(value: string, replacement: string): void {
  if (value.length < MIN_SECRET_LENGTH || secrets.has(value)) return;
  secrets.set(value, replacement);
  // As it appears inside JSON (log fields, dead letters): `"` and `\` escaped.
  const json = JSON.stringify(value).slice(1, -1);
  if (json !== value && !secrets.has(json)) secrets.set(json, replacement);
  ordered = [...secrets].sort((a, b) => b[0].length - a[0].length);
}

/** `text` with every known secret value replaced (see {@link registerSecret}). */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [value, replacement] of ordered) {
    if (out.includes(value)) out = out.split(value).join(replacement);
  }
  return out;
}

/**
 * A copy of a JSON-like `value` (strings, arrays, plain objects) with {@link redactSecrets}
 * applied to every string in it, keys included; other values are kept as they are.
 */
export function redactSecretsDeep<T>(value: T): T {
  if (ordered.length === 0) return value;
  return deep(value, 0) as T;
}

function deep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => deep(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [redactSecrets(k), deep(v, depth + 1)]));
}

/** Forgets every secret (for tests that check what is registered). */
export function forgetSecrets(): void {
  secrets.clear();
  ordered = [];
}
