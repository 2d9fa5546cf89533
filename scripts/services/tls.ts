/**
 * Test certificates for the services' TLS ports, made with `openssl` (Debian's `openssl`
 * package): a CA, a server certificate for `127.0.0.1` and `localhost` signed by it, and a
 * client certificate (CN `sluice`) for mutual TLS. Made once per folder and kept: clients
 * trust `ca.pem`, so regenerating it would break every client that read it.
 *
 * Files in `dir`: `ca.pem`, `ca.key`, `server.pem`, `server.key`, `server-chain.pem` (the
 * server's key, certificate and the CA, one PEM file: Kafka's `ssl.keystore.type=PEM`),
 * `client.pem`, `client.key`. Keys are unencrypted PKCS#8, for tests only.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall, hasCommand, sh } from './service.ts';

/** Paths of the files {@link ensureCertificates} makes. */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Key, certificate and CA in one PEM file. */
  readonly serverChain: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** Where {@link ensureCertificates} puts (or finds) the files of `dir`. */
export function certificatePaths(dir: string): TestCertificates {
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    serverChain: join(dir, 'server-chain.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
}

/**
 * Makes the CA, server and client certificates in `dir` unless they exist (10 years, RSA 2048).
 * `subject` names the CA (e.g. `Sluice test CA (kafka)`).
 */
export function ensureCertificates(dir: string, subject: string): TestCertificates {
  const paths = certificatePaths(dir);
  if (existsSync(paths.serverChain) && existsSync(paths.clientKey)) return paths;
  if (!hasCommand('openssl')) aptInstall('openssl');
  // Build in a scratch folder and rename last: a half-made set is never taken for a whole one.
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const t = certificatePaths(tmp);
  const days = '3650';
  const key = (file: string) =>
    sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file], {
      quiet: true,
    });
  key(join(tmp, 'ca.key'));
  sh(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-key',
      join(tmp, 'ca.key'),
      '-sha256',
      '-days',
      days,
      '-subj',
      `/CN=${subject}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      t.ca,
    ],
    { quiet: true },
  );
  const sign = (name: string, cn: string, ext: string) => {
    const csr = join(tmp, `${name}.csr`);
    const extFile = join(tmp, `${name}.ext`);
    writeFileSync(extFile, ext);
    sh('openssl', ['req', '-new', '-key', join(tmp, `${name}.key`), '-subj', `/CN=${cn}`, '-out', csr], {
      quiet: true,
    });
    sh(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        t.ca,
        '-CAkey',
        join(tmp, 'ca.key'),
        '-CAcreateserial',
        '-days',
        days,
        '-sha256',
        '-extfile',
        extFile,
        '-out',
        join(tmp, `${name}.pem`),
      ],
      { quiet: true },
    );
    rmSync(csr);
    rmSync(extFile);
  };
  key(t.serverKey);
  sign(
    'server',
    'localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
  );
  key(t.clientKey);
  sign('client', 'sluice', 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  writeFileSync(
    t.serverChain,
    `${[t.serverKey, t.serverCert, t.ca].map((f) => readFileSync(f, 'utf8').trimEnd()).join('\n')}\n`,
  );
  rmSync(join(tmp, 'ca.srl'), { force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return paths;
}

/**
 * Copies what a client needs (`ca.pem`, `client.pem`, `client.key`) from the folder a running
 * server's certificates came from to `to`, unless `to` already holds the same CA: a server started
 * from another checkout keeps its CA, and the clients of this one must trust that CA, not their own.
 */
export function adoptClientCertificates(fromDir: string, toDir: string): void {
  const from = certificatePaths(fromDir);
  const to = certificatePaths(toDir);
  if (from.dir === to.dir || !existsSync(from.ca)) return;
  if (existsSync(to.ca) && readFileSync(to.ca, 'utf8') === readFileSync(from.ca, 'utf8')) return;
  mkdirSync(to.dir, { recursive: true });
  for (const key of ['ca', 'clientCert', 'clientKey'] as const) copyFileSync(from[key], to[key]);
}

/** `.services/<service>/tls` of this checkout: where its clients find the CA and client certificate. */
export function serviceTlsDir(service: string): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.services', service, 'tls');
}

/**
 * The certificates of a server that reads them from a machine-wide `serverDir` (outside any
 * checkout, so a server started from one checkout outlives it): made once in `localDir` and
 * installed there unless present (owned by `owner` when given, the key mode 0600), then adopted
 * back into `localDir` so this checkout's clients trust the CA the server actually uses.
 */
export function installServerCertificates(
  localDir: string,
  serverDir: string,
  subject: string,
  owner?: string,
): TestCertificates {
  const installed = certificatePaths(serverDir);
  if (!existsSync(installed.serverKey) || !existsSync(installed.clientKey)) {
    const made = ensureCertificates(localDir, subject);
    mkdirSync(serverDir, { recursive: true });
    for (const key of ['ca', 'serverCert', 'serverKey', 'clientCert', 'clientKey'] as const) {
      copyFileSync(made[key], installed[key]);
    }
    if (owner !== undefined) sh('chown', ['-R', `${owner}:${owner}`, serverDir], { quiet: true });
    chmodSync(installed.serverKey, 0o600);
  }
  adoptClientCertificates(serverDir, localDir);
  return installed;
}
