/**
 * TLS settings every connector spells the same way, `tls: { ca, cert, key, servername,
 * rejectUnauthorized }` (Kafka, PostgreSQL, Redis), and their translation to Node's
 * `tls.connect` options. `ca`, `cert` and `key` are PEM file paths, or PEM text itself (a value
 * starting with `-----BEGIN`, e.g. from `${CA_PEM}`); files are read when the connection opens,
 * so `sluice lint` needs none of them.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';

/** The `tls:` block of a connection (see the module comment). */
export const tlsSchema = z
  .object({
    ca: z
      .string()
      .min(1)
      .optional()
      .describe('CA certificate(s) to trust, PEM file (or PEM text). Default: the system’s CAs.'),
    cert: z.string().min(1).optional().describe('Client certificate for mutual TLS, PEM file (or PEM text).'),
    key: z.string().min(1).optional().describe('Private key of `cert`, PEM file (or PEM text).'),
    servername: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name the server certificate must carry (and SNI), when it differs from the host connected to.',
      ),
    rejectUnauthorized: z
      .boolean()
      .default(true)
      .describe(
        'Refuse a server whose certificate is not trusted or does not match. `false` only for tests.',
      ),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'give `cert` and `key` together (mutual TLS), or neither',
    path: ['key'],
  });

/** A parsed `tls:` block; `true` means TLS with the defaults (`tls: true`). */
export type TlsConfig = z.output<typeof tlsSchema>;

/** `tls:` as a field: `true` (TLS, system CAs), or the block. */
export const tlsField = z
  .union([z.literal(true), tlsSchema])
  .optional()
  .describe(
    'Connect over TLS: `true` (the system’s CAs), or `{ ca, cert, key, servername, rejectUnauthorized }` with PEM files.',
  );

/**
 * Reads a PEM value: a file path, or the PEM text itself. Throws a `SLUICE_CONFIG` error naming
 * `field` (`tls.ca`, `sslrootcert`) when the file cannot be read.
 */
export function readPem(value: string, field: string): string {
  if (value.trimStart().startsWith('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `reading \`${field}\` (${value}): ${errorMessage(err)}; give a PEM file that exists, or the PEM text`,
      { field },
      { cause: err },
    );
  }
}

const pem = (value: string, field: string) => readPem(value, `tls.${field}`);

/**
 * Node `tls.connect` options of `tls` (files read now); undefined when `tls` is undefined.
 * Throws a `SLUICE_CONFIG` error naming the field when a file cannot be read.
 */
export function tlsOptions(tls: TlsConfig | true | undefined): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  if (tls === true) return {};
  return {
    ...(tls.ca !== undefined ? { ca: pem(tls.ca, 'ca') } : {}),
    ...(tls.cert !== undefined ? { cert: pem(tls.cert, 'cert') } : {}),
    ...(tls.key !== undefined ? { key: pem(tls.key, 'key') } : {}),
    ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

/** Node's codes for a server certificate the client does not trust or that names another host. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The first error in `err`'s chain (`cause`, `errors`) for which `test` holds. */
export function findInChain(
  err: unknown,
  test: (e: { code?: unknown; message?: unknown }) => boolean,
): unknown {
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): unknown => {
    if (e === null || typeof e !== 'object' || depth > 8 || seen.has(e)) return undefined;
    seen.add(e);
    if (test(e as { code?: unknown })) return e;
    const x = e as { cause?: unknown; errors?: unknown };
    if (Array.isArray(x.errors)) {
      for (const inner of x.errors) {
        const found = walk(inner, depth + 1);
        if (found !== undefined) return found;
      }
    }
    return walk(x.cause, depth + 1);
  };
  return walk(err, 0);
}

/**
 * One line saying what is wrong with a TLS connection to `where` and what to do, when `err`
 * is a certificate the client does not trust (or for another host); undefined otherwise.
 */
export function untrustedCertificate(err: unknown, where: string): string | undefined {
  const e = findInChain(err, (x) => typeof x.code === 'string' && UNTRUSTED.has(x.code)) as
    | { code: string; message: string }
    | undefined;
  if (e === undefined) return undefined;
  const what =
    e.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'names another host'
      : e.code === 'CERT_HAS_EXPIRED' || e.code === 'CERT_NOT_YET_VALID'
        ? 'is not valid now'
        : 'is not trusted';
  return `the TLS certificate of ${where} ${what} (${e.code}: ${e.message}); set \`tls.ca\` to the CA that signed it${e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ', or `tls.servername` to the name it carries' : ''}`;
}
