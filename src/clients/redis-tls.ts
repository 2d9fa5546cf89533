/**
 * How a Redis connection of Sluice (the `redis` source and sink, the checkpoint store) uses TLS:
 * `rediss://` URLs, or `redis://` with the `tls:` block every connector spells the same way
 * (`clients/tls.ts`), translated to `ioredis`'s `tls` option; and the one-line diagnosis of a
 * connection refused for a reason waiting will not fix (an untrusted certificate, a wrong
 * password, a plaintext client on a TLS port or the reverse), so a run fails at once with what
 * to do instead of reconnecting forever.
 */
import { createConnection } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { redactUrl } from '../core/url.ts';
import { findInChain, type TlsConfig, tlsOptions, untrustedCertificate } from './tls.ts';

/**
 * The `ioredis` `tls` option of `url` and `tls`: undefined for plaintext (a `redis://` URL
 * without `tls:`), Node `tls.connect` options otherwise (`rediss://`, or `tls:` given), with PEM
 * files read now (a `SLUICE_CONFIG` error names the field when one cannot be read).
 */
export function redisTlsOptions(
  url: string,
  tls: TlsConfig | true | undefined,
): ConnectionOptions | undefined {
  const options = tlsOptions(tls);
  if (options !== undefined) return options;
  return /^rediss:/i.test(url) ? {} : undefined;
}

/** Names of the settings a message points at: `url` and `tls`, or the checkpoint store's. */
export interface RedisFields {
  readonly url: string;
  readonly tls: string;
}

/** `host:port` and user of a Redis URL, for messages (never the password). */
function addressOf(url: string): { address: string; user: string } {
  try {
    const u = new URL(redactUrl(url));
    return {
      address: `${u.hostname || '127.0.0.1'}:${u.port || '6379'}`,
      user: decodeURIComponent(u.username) || 'default',
    };
  } catch {
    return { address: '(unparsable URL)', user: 'default' };
  }
}

/** True when a TLS handshake with `host:port` completes (certificate not checked): it speaks TLS. */
function speaksTls(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, timeout: 2000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** True when `host:port` answers a plaintext `PING` (with `+PONG` or an error such as `-NOAUTH`). */
function speaksPlaintext(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => done(d[0] === 0x2b || d[0] === 0x2d));
    socket.once('error', () => done(false));
  });
}

/**
 * When `err` (a failed connection attempt to `url`) is a refusal that waiting will not fix, a
 * `SLUICE_CONFIG` error with one line saying which and what to do, never the password; undefined
 * otherwise (the client keeps reconnecting). A reset connection without TLS, or a TLS connection
 * that timed out, is probed once (a TLS handshake, a plaintext `PING`) to tell a server that
 * speaks the other protocol on that port from one that is down.
 */
export async function redisConnectFailure(
  err: unknown,
  url: string,
  tls: TlsConfig | true | undefined,
  fields: RedisFields = { url: 'url', tls: 'tls' },
): Promise<SluiceError | undefined> {
  if (err instanceof SluiceError) return err.code === ErrorCode.CONFIG ? err : undefined;
  const { address, user } = addressOf(url);
  const at = `Redis at \`${address}\``;
  const onTls = redisTlsOptions(url, tls) !== undefined;
  const text = errorMessage(err);
  const code = (findInChain(err, (e) => typeof e.code === 'string') as { code?: string } | undefined)?.code;
  let message = untrustedCertificate(err, at);
  if (message === undefined && /^WRONGPASS/.test(text)) {
    message = `${at} refused the password of user \`${user}\` (wrong user name or password, or the user is disabled); check the user and password in \`${fields.url}\``;
  } else if (message === undefined && /^NOAUTH/.test(text)) {
    message = `${at} requires a password; put the user and password in \`${fields.url}\` (\`redis://user:\${REDIS_PASSWORD}@host:port\`)`;
  } else if (
    message === undefined &&
    /wrong version number|packet length too long|http request/i.test(text)
  ) {
    message = `${at} does not speak TLS on that port; use a \`redis://\` URL without \`${fields.tls}\`, or the server's TLS port`;
  } else if (
    message === undefined &&
    (code === 'ECONNRESET' || code === 'ETIMEDOUT' || /Connection is closed/.test(text))
  ) {
    const [host, port] = [
      address.slice(0, address.lastIndexOf(':')),
      Number(address.slice(address.lastIndexOf(':') + 1)),
    ];
    if (!onTls && (await speaksTls(host, port))) {
      message = `${at} expects TLS on that port, and this client speaks plaintext; use a \`rediss://\` URL (with \`${fields.tls}.ca\` if the server's certificate is not signed by a public CA) or the server's plaintext port`;
    } else if (onTls && (await speaksPlaintext(host, port))) {
      message = `${at} does not speak TLS on that port; use a \`redis://\` URL without \`${fields.tls}\`, or the server's TLS port`;
    }
  }
  if (message === undefined) return undefined;
  return new SluiceError(ErrorCode.CONFIG, message, { server: address }, { cause: err });
}
