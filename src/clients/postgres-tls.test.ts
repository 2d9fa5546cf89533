import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pgConnectFailure, pgTlsSettings, sslModeProblem } from './postgres-tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const URL_ = 'postgres://u:p%40ss@db.example.com:5433/app';
const block = (extra: object = {}) => ({ ca, rejectUnauthorized: true, ...extra });

describe('pgTlsSettings', () => {
  it('leaves a URL without TLS settings as it is (plaintext, the pg default)', () => {
    assert.deepEqual(pgTlsSettings(URL_, undefined), { connectionString: URL_ });
  });

  it('sslmode=disable is plaintext, and refuses `tls:` beside it', () => {
    const s = pgTlsSettings(`${URL_}?sslmode=disable&application_name=x`, undefined);
    assert.equal(s.ssl, false);
    assert.equal(s.connectionString, `${URL_}?application_name=x`);
    assert.throws(() => pgTlsSettings(`${URL_}?sslmode=disable`, block()), /turns TLS off.*remove one/);
  });

  it('`tls:` alone is verify-full: the chain and the host name are checked', () => {
    const s = pgTlsSettings(URL_, block());
    assert.ok(s.ssl);
    assert.equal(s.ssl.rejectUnauthorized, true);
    assert.equal(s.ssl.checkServerIdentity, undefined);
    assert.match(String(s.ssl.ca), /BEGIN CERTIFICATE/);
  });

  it('require checks nothing without a CA, and the chain with one (as libpq)', () => {
    const bare = pgTlsSettings(`${URL_}?sslmode=require`, undefined);
    assert.ok(bare.ssl);
    assert.equal(bare.ssl.rejectUnauthorized, false);
    const withCa = pgTlsSettings(`${URL_}?sslmode=require&sslrootcert=${ca}`, undefined);
    assert.ok(withCa.ssl);
    assert.equal(withCa.ssl.rejectUnauthorized, true);
    assert.equal(withCa.ssl.checkServerIdentity?.('h', {} as never), undefined);
    assert.equal(withCa.connectionString, URL_);
  });

  it('verify-ca skips the host name; servername replaces it under verify-full', () => {
    const vca = pgTlsSettings(`${URL_}?sslmode=verify-ca`, block());
    assert.ok(vca.ssl);
    assert.equal(vca.ssl.checkServerIdentity?.('db.example.com', {} as never), undefined);
    const named = pgTlsSettings(URL_, block({ servername: 'other.example.com' }));
    assert.ok(named.ssl);
    const cert = { subject: { CN: 'db.example.com' }, subjectaltname: 'DNS:db.example.com' } as never;
    assert.match(String(named.ssl.checkServerIdentity?.('db.example.com', cert)), /other\.example\.com/);
  });

  it('names the URL parameter whose file is missing, and wants a key with a certificate', () => {
    assert.throws(
      () => pgTlsSettings(`${URL_}?sslrootcert=/nope/ca.pem`, undefined),
      /reading `sslrootcert`/,
    );
    assert.throws(() => pgTlsSettings(URL_, block({ ca: '/nope/ca.pem' })), /reading `tls\.ca`/);
    assert.throws(() => pgTlsSettings(`${URL_}?sslcert=${ca}`, undefined), /give `tls\.cert` and `tls\.key`/);
  });
});

describe('sslModeProblem', () => {
  it('accepts the four modes and no mode, refuses the fallbacks and typos', () => {
    for (const m of ['disable', 'require', 'verify-ca', 'verify-full']) {
      assert.equal(sslModeProblem(`${URL_}?sslmode=${m}`), undefined);
    }
    assert.equal(sslModeProblem(URL_), undefined);
    assert.match(sslModeProblem(`${URL_}?sslmode=prefer`) ?? '', /falls back to plaintext/);
    assert.match(sslModeProblem(`${URL_}?sslmode=verify_full`) ?? '', /unknown `sslmode=verify_full`/);
  });
});

describe('pgConnectFailure', () => {
  const fail = (code: string, message: string) => Object.assign(new Error(message), { code });
  it('says which refusal it is, and never the password', () => {
    const pw = pgConnectFailure(
      fail('28P01', 'password authentication failed for user "u"'),
      URL_,
      undefined,
    );
    assert.match(
      pw?.message ?? '',
      /^PostgreSQL at `db\.example\.com:5433` refused the password of user `u`/,
    );
    assert.doesNotMatch(pw?.message ?? '', /p%40ss|p@ss/);
    const hba = fail(
      '28000',
      'pg_hba.conf rejects connection for host "1.2.3.4", user "u", database "app", no encryption',
    );
    assert.match(
      pgConnectFailure(hba, URL_, undefined)?.message ?? '',
      /only over TLS.*add `tls: \{ ca: … \}`/,
    );
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    assert.match(pgConnectFailure(untrusted, URL_, true)?.message ?? '', /is not trusted.*set `tls\.ca`/);
    assert.match(
      pgConnectFailure(new Error('The server does not support SSL connections'), URL_, true)?.message ?? '',
      /does not accept TLS/,
    );
  });

  it('leaves what waiting may fix to the caller', () => {
    assert.equal(pgConnectFailure(fail('ECONNREFUSED', 'connect ECONNREFUSED'), URL_, undefined), undefined);
    assert.equal(
      pgConnectFailure(fail('57P03', 'the database system is starting up'), URL_, undefined),
      undefined,
    );
  });
});
