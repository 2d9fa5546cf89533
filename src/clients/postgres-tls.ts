/**
 * How a PostgreSQL connection of Sluice (the `postgres` source and sink, the checkpoint store)
 * uses TLS: the URL's `sslmode` (libpq's meaning) together with the `tls:` block every connector
 * spells the same way (`clients/tls.ts`), their translation to the `pg` client's `ssl` option, and
 * the one-line diagnosis of a connection the server refused for a reason waiting will not fix
 * (an untrusted certificate, a wrong password, TLS required by `pg_hba.conf`…).
 *
 * | `sslmode`     | TLS | certificate checked                                  |
 * |---------------|-----|------------------------------------------------------|
 * | `disable`     | no  | —                                                    |
 * | `require`     | yes | no (but against `ca` when one is given, as libpq)    |
 * | `verify-ca`   | yes | signed by a trusted CA; any host name                |
 * | `verify-full` | yes | signed by a trusted CA and naming the host (or `servername`) |
 * | (none)        | only with `tls:`, then as `verify-full`; plaintext otherwise |
 *
 * `sslrootcert`, `sslcert` and `sslkey` in the URL are taken as `tls.ca`, `tls.cert` and `tls.key`
 * (the block wins); `sslrootcert=system` means the system's CAs. libpq's `allow` and `prefer`
 * (fall back to plaintext) are refused: they protect nothing against an active attacker.
 */
import { type ConnectionOptions, checkServerIdentity } from 'node:tls';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { redactUrl } from '../core/url.ts';
import { findInChain, readPem, type TlsConfig, untrustedCertificate } from './tls.ts';

/** The `sslmode` values Sluice honours. */
export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

/** One of {@link SSL_MODES}. */
export type SslMode = (typeof SSL_MODES)[number];

/** URL parameters this module reads (and removes before `pg` parses the URL). */
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/** Why the URL's `sslmode` is not one Sluice honours, for lint; undefined when it is fine or absent. */
export function sslModeProblem(url: string): string | undefined {
  let mode: string | null;
  try {
    mode = new URL(url).searchParams.get('sslmode');
  } catch {
    return undefined; // the URL check says it
  }
  if (mode === null || (SSL_MODES as readonly string[]).includes(mode)) return undefined;
  if (mode === 'allow' || mode === 'prefer') {
    return `\`sslmode=${mode}\` falls back to plaintext, which Sluice does not do; use \`sslmode=require\` (or \`verify-full\` with \`tls.ca\`) for TLS, or \`sslmode=disable\``;
  }
  return `unknown \`sslmode=${mode}\`; use one of ${SSL_MODES.map((m) => `\`${m}\``).join(', ')}`;
}

/** The `pg` client options of a connection: the URL without its TLS parameters, and `ssl`. */
export interface PgTlsSettings {
  readonly connectionString: string;
  /** Absent: plaintext, unless `PGSSLMODE` says otherwise (the `pg` default). */
  readonly ssl?: false | ConnectionOptions;
}

/**
 * The `pg` options for `url` and `tls` (see the module comment), with PEM files read now. Throws
 * a `SLUICE_CONFIG` error for an `sslmode` it does not honour, for `sslmode=disable` beside `tls:`,
 * and when a PEM file cannot be read.
 *
 * @example
 * new pg.Client({ ...pgTlsSettings('postgres://u:p@db:5432/app?sslmode=verify-full', { ca: 'ca.pem', rejectUnauthorized: true }) });
 */
export function pgTlsSettings(url: string, tls: TlsConfig | true | undefined): PgTlsSettings {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined; // `pg` reports an unparsable URL itself
  }
  const params = parsed?.searchParams;
  if (
    parsed === undefined ||
    params === undefined ||
    (!TLS_PARAMS.some((p) => params.has(p)) && tls === undefined)
  ) {
    return { connectionString: url };
  }
  const problem = sslModeProblem(url);
  if (problem !== undefined) throw new SluiceError(ErrorCode.CONFIG, `\`url\`: ${problem}`, { field: 'url' });
  const mode = params.get('sslmode') as SslMode | null;
  const rootCert = params.get('sslrootcert');
  const fromUrl = {
    ca: rootCert === null || rootCert === 'system' ? undefined : rootCert,
    cert: params.get('sslcert') ?? undefined,
    key: params.get('sslkey') ?? undefined,
  };
  for (const p of TLS_PARAMS) params.delete(p);
  const connectionString = parsed.toString();
  if (mode === 'disable') {
    if (tls !== undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        '`sslmode=disable` in `url` turns TLS off, and `tls:` asks for it; remove one of them',
        { field: 'tls' },
      );
    }
    return { connectionString, ssl: false };
  }
  const block = tls === true || tls === undefined ? undefined : tls;
  const read = (value: string | undefined, field: string, param: string, from: string | undefined) =>
    value !== undefined ? readPem(value, field) : from !== undefined ? readPem(from, param) : undefined;
  const ca = read(block?.ca, 'tls.ca', 'sslrootcert', fromUrl.ca);
  const cert = read(block?.cert, 'tls.cert', 'sslcert', fromUrl.cert);
  const key = read(block?.key, 'tls.key', 'sslkey', fromUrl.key);
  if ((cert === undefined) !== (key === undefined)) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      'a client certificate needs its key: give `tls.cert` and `tls.key` (or `sslcert` and `sslkey`) together',
      { field: 'tls.key' },
    );
  }
  const effective: SslMode = mode ?? 'verify-full';
  const servername = block?.servername;
  const ssl: ConnectionOptions = {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    // libpq's `require` checks nothing, unless a CA is given (then it is `verify-ca`).
    rejectUnauthorized: block?.rejectUnauthorized !== false && (effective !== 'require' || ca !== undefined),
  };
  if (effective === 'verify-ca' || effective === 'require') ssl.checkServerIdentity = () => undefined;
  else if (servername !== undefined)
    ssl.checkServerIdentity = (_host, c) => checkServerIdentity(servername, c);
  return { connectionString, ssl };
}

/** True when `url`/`tls` ask for TLS (for messages: whether the client tried it). */
function asksForTls(url: string, tls: TlsConfig | true | undefined): boolean {
  try {
    const mode = new URL(url).searchParams.get('sslmode');
    return mode === null ? tls !== undefined : mode !== 'disable';
  } catch {
    return tls !== undefined;
  }
}

/**
 * When `err` (from connecting to `url`) is a refusal that waiting will not fix, a `SLUICE_CONFIG`
 * error with one line saying which and what to do, naming the server and user but never the
 * password; undefined otherwise (the caller retries or fails as usual). `fields` names the
 * settings the messages point at (default `url` and `tls`; the checkpoint store's are
 * `checkpoint.store` and `checkpoint.tls`).
 */
export function pgConnectFailure(
  err: unknown,
  url: string,
  tls: TlsConfig | true | undefined,
  fields: { readonly url: string; readonly tls: string } = { url: 'url', tls: 'tls' },
): SluiceError | undefined {
  if (err instanceof SluiceError) return err.code === ErrorCode.CONFIG ? err : undefined;
  let address = '(unparsable URL)';
  let user = '';
  let database = '';
  try {
    const u = new URL(redactUrl(url));
    address = `${u.hostname || 'localhost'}:${u.port || '5432'}`;
    user = decodeURIComponent(u.username);
    database = decodeURIComponent(u.pathname.replace(/^\//, '')) || user;
  } catch {
    // named as unparsable
  }
  const at = `PostgreSQL at \`${address}\``;
  const onTls = asksForTls(url, tls);
  const pgErr = findInChain(err, (e) => typeof e.code === 'string' && /^28/.test(e.code)) as
    | { code: string; message: string }
    | undefined;
  const text = (m: RegExp) => findInChain(err, (e) => typeof e.message === 'string' && m.test(e.message));
  let message = untrustedCertificate(err, at);
  if (message !== undefined) {
    message += ' (or `sslrootcert` in the URL; `sslmode=require` skips the check, for tests only)';
  } else if (text(/server does not support SSL/)) {
    message = `${at} does not accept TLS (\`ssl = off\` on the server); remove \`${fields.tls}\` and \`sslmode\`, or turn \`ssl\` on in the server`;
  } else if (pgErr?.code === '28P01') {
    message = `${at} refused the password of user \`${user}\` (wrong password, or none set for that role); check the password in \`${fields.url}\``;
  } else if (pgErr !== undefined && /no encryption/.test(pgErr.message) && !onTls) {
    message = `${at} accepts user \`${user}\` on database \`${database}\` only over TLS (a \`hostssl\` line in pg_hba.conf), and this connection is plaintext; add \`${fields.tls}: { ca: … }\` (or \`?sslmode=verify-full\` to \`${fields.url}\`)`;
  } else if (pgErr !== undefined && /certificate/.test(pgErr.message)) {
    message = `${at} refused the client certificate of user \`${user}\` (${pgErr.message}); set \`${fields.tls}.cert\` and \`${fields.tls}.key\` to a certificate the server trusts whose name maps to that user`;
  } else if (pgErr !== undefined) {
    message = `${at} refused user \`${user}\` on database \`${database}\` (${pgErr.message}); ask for a pg_hba.conf line that admits it${onTls ? '' : ', or connect over TLS'}`;
  }
  if (message === undefined) return undefined;
  return new SluiceError(ErrorCode.CONFIG, message, { server: address, database }, { cause: err });
}
