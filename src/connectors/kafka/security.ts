/**
 * How a `kafka` source, sink, transaction path and admin command reach secured brokers: the
 * `tls:` (see `clients/tls.ts`) and `sasl:` settings beside `brokers`, their translation to
 * `@platformatic/kafka` client options, and the one-line diagnosis of a refused connection
 * (wrong credentials, an untrusted certificate, a plaintext client on a TLS listener…) that
 * waiting would not fix, so the run fails at once with what to do instead of retrying.
 */
import { execFile } from 'node:child_process';
import { z } from 'zod';
import {
  findInChain,
  type TlsConfig,
  tlsField,
  tlsOptions,
  untrustedCertificate,
} from '../../clients/tls.ts';
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';

/** The `sasl:` block of a Kafka connection. */
export const saslSchema = z
  .object({
    mechanism: z
      .enum(['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'])
      .describe('SASL mechanism the listener accepts.'),
    username: z.string().min(1).optional().describe('User (`plain`, `scram-*`).'),
    password: z
      .string()
      .min(1)
      .optional()
      .describe(`Password (\`plain\`, \`scram-*\`); give it as \`\${VAR}\` so it never sits in the file.`),
    token: z
      .string()
      .min(1)
      .optional()
      .describe(`\`oauthbearer\`: the token itself (e.g. \`\${KAFKA_TOKEN}\`).`),
    tokenCommand: z
      .string()
      .min(1)
      .optional()
      .describe(
        '`oauthbearer`: a shell command printing a token (JSON with `access_token`, or the token alone); run at each login.',
      ),
    tokenUrl: z
      .string()
      .url()
      .optional()
      .describe(
        '`oauthbearer`: a URL answering a GET with a token (JSON with `access_token`, or the token alone); fetched at each login.',
      ),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.mechanism === 'oauthbearer') {
      const given = [s.token, s.tokenCommand, s.tokenUrl].filter((x) => x !== undefined).length;
      if (given !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['token'],
          message: '`oauthbearer` needs exactly one of `token`, `tokenCommand` and `tokenUrl`',
        });
      }
    } else {
      for (const key of ['username', 'password'] as const) {
        if (s[key] === undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: `\`${s.mechanism}\` needs \`${key}\`` });
        }
      }
    }
  })
  .optional()
  .describe(
    'SASL authentication: `{ mechanism: plain | scram-sha-256 | scram-sha-512, username, password }` or ' +
      '`{ mechanism: oauthbearer, token | tokenCommand | tokenUrl }`. Use with `tls` (SASL_SSL) unless the listener is SASL_PLAINTEXT.',
  );

/** A parsed `sasl:` block. */
export type KafkaSasl = NonNullable<z.output<typeof saslSchema>>;

/** The connection fields of every `kafka` component (and of `connections: { x: { kafka } }`). */
export const kafkaSecurityFields = {
  tls: tlsField,
  sasl: saslSchema,
};

/** How a Kafka client reaches the brokers: where, as whom, and over what. */
export interface KafkaConnection {
  /** `host:port` of one or more brokers. */
  readonly brokers: readonly string[];
  /** Client id the broker logs; default `sluice`. */
  readonly clientId?: string | undefined;
  /** TLS (`true`: the system's CAs). */
  readonly tls?: TlsConfig | true | undefined;
  /** SASL authentication. */
  readonly sasl?: KafkaSasl | undefined;
}

const MECHANISMS = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
  oauthbearer: 'OAUTHBEARER',
} as const;

/** The token in a token endpoint's or command's output: JSON `access_token`/`token`, or the text. */
function tokenOf(text: string, from: string): string {
  const t = text.trim();
  let token = t;
  if (t.startsWith('{')) {
    try {
      const json = JSON.parse(t) as { access_token?: unknown; token?: unknown };
      token = String(json.access_token ?? json.token ?? '');
    } catch {
      // not JSON: the text is the token
    }
  }
  if (token === '') {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `${from} gave no token (empty output, or JSON without \`access_token\`)`,
    );
  }
  return token;
}

/** A provider the client calls at each login: runs `tokenCommand` or fetches `tokenUrl`. */
function tokenProvider(sasl: KafkaSasl): string | (() => Promise<string>) | undefined {
  if (sasl.token !== undefined) return sasl.token;
  const command = sasl.tokenCommand;
  if (command !== undefined) {
    return () =>
      new Promise((resolve, reject) =>
        execFile('sh', ['-c', command], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
          if (err) {
            reject(
              new SluiceError(
                ErrorCode.CONFIG,
                `\`sasl.tokenCommand\` failed (${String(stderr).trim() || errorMessage(err)}); fix the command`,
              ),
            );
          } else {
            try {
              resolve(tokenOf(String(stdout), '`sasl.tokenCommand`'));
            } catch (e) {
              reject(e);
            }
          }
        }),
      );
  }
  const url = sasl.tokenUrl;
  if (url !== undefined) {
    return async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (!res.ok) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `\`sasl.tokenUrl\` answered HTTP ${res.status}; check the URL and its credentials`,
        );
      }
      return tokenOf(await res.text(), '`sasl.tokenUrl`');
    };
  }
  return undefined;
}

/**
 * The `@platformatic/kafka` options of `connection` (bootstrap brokers, client id, TLS with its
 * files read now, SASL). Throws a `SLUICE_CONFIG` error when a TLS file cannot be read.
 */
export function clientOptions(connection: KafkaConnection): {
  clientId: string;
  bootstrapBrokers: string[];
  tls?: import('node:tls').ConnectionOptions;
  tlsServerName?: string;
  sasl?: {
    mechanism: (typeof MECHANISMS)[keyof typeof MECHANISMS];
    username?: string;
    password?: string;
    token?: string | (() => Promise<string>);
  };
} {
  const tls = tlsOptions(connection.tls);
  const sasl = connection.sasl;
  const servername =
    connection.tls !== undefined && connection.tls !== true ? connection.tls.servername : undefined;
  return {
    clientId: connection.clientId ?? 'sluice',
    bootstrapBrokers: [...connection.brokers],
    ...(tls !== undefined ? { tls } : {}),
    ...(servername !== undefined ? { tlsServerName: servername } : {}),
    ...(sasl !== undefined
      ? {
          sasl: {
            mechanism: MECHANISMS[sasl.mechanism],
            ...(sasl.username !== undefined ? { username: sasl.username } : {}),
            ...(sasl.password !== undefined ? { password: sasl.password } : {}),
            ...(tokenProvider(sasl) !== undefined ? { token: tokenProvider(sasl) } : {}),
          },
        }
      : {}),
  };
}

function codeOf(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

/**
 * When `err` says the brokers refused this client for a reason waiting will not fix, a
 * `SLUICE_CONFIG` error with one line saying which and what to do; undefined otherwise (the
 * caller treats it as usual: unreachable brokers are waited for).
 */
export function securityFailure(err: unknown, connection: KafkaConnection): SluiceError | undefined {
  if (err instanceof SluiceError) return err.code === ErrorCode.CONFIG ? err : undefined;
  const at = `Kafka at \`${connection.brokers.join(',')}\``;
  const sasl = connection.sasl;
  const hasTls = connection.tls !== undefined;
  let message: string | undefined;
  const msg = (m: RegExp) => findInChain(err, (e) => typeof e.message === 'string' && m.test(e.message));
  const untrusted = untrustedCertificate(err, at);
  if (untrusted !== undefined) message = untrusted;
  else if (msg(/Broker requires TLS/)) {
    message = `${at} expects TLS on that listener, and this client speaks plaintext; add \`tls:\` (with \`ca\` if the broker's certificate is not signed by a public CA) or use the broker's plaintext port`;
  } else if (msg(/TLS handshake failed|before secure TLS connection was established/)) {
    message = `${at} does not speak TLS on that listener (the handshake was cut); remove \`tls:\` or use the broker's TLS port`;
  } else if (msg(/Cannot find a suitable SASL mechanism/)) {
    message =
      sasl === undefined
        ? `${at} refused the connection during SASL; check the listener's security protocol`
        : `${at} does not accept SASL \`${sasl.mechanism}\` on that listener (or it is not a SASL listener); use a mechanism the listener enables (\`sasl.enabled.mechanisms\`) or the broker's SASL port`;
  } else if (findInChain(err, (e) => codeOf(e) === 'PLT_KFK_AUTHENTICATION')) {
    message =
      sasl === undefined
        ? `${at} refused authentication; add \`sasl:\``
        : sasl.mechanism === 'oauthbearer'
          ? `${at} refused the OAUTHBEARER token (SASL authentication failed); check the token (expiry, audience, subject) and its source`
          : `${at} refused SASL \`${sasl.mechanism}\` login of user \`${sasl.username}\` (wrong user name or password, or no ${sasl.mechanism.toUpperCase()} credential for it); check \`sasl.username\` and \`sasl.password\``;
  } else if (findInChain(err, (e) => e instanceof SluiceError && e.code === ErrorCode.CONFIG)) {
    return findInChain(err, (e) => e instanceof SluiceError) as SluiceError;
  } else if (
    hasTls &&
    (connection.tls === true || connection.tls?.cert === undefined) &&
    msg(/certificate required|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|alert number 116/i)
  ) {
    message = `${at} requires a client certificate (mutual TLS); set \`tls.cert\` and \`tls.key\``;
  } else if (msg(/unknown ca|bad certificate|alert number 4[28]/i)) {
    message = `${at} refused this client's certificate (not signed by a CA the broker trusts); check \`tls.cert\` and \`tls.key\``;
  }
  if (message === undefined) return undefined;
  return new SluiceError(
    ErrorCode.CONFIG,
    message,
    { brokers: connection.brokers.join(',') },
    { cause: err },
  );
}
