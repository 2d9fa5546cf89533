// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
/**
 * PostgreSQL over TLS through the real `sluice` command, against the shared server
 * (`npm run services -- up postgres`), whose `pg_hba.conf` admits `sluice_tls` (password) and
 * `sluice_cert` (client certificate) over TLS only — so a run that reads or writes as them has
 * used TLS. The source, the sink and the checkpoint store each connect over TLS, declared once
 * under `connections:` or spelled in the URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`).
 * Refusals (an untrusted certificate, a wrong password, TLS required but not configured, a
 * server name that does not match) fail at once with one line saying which and what to do,
 * never the password; contradictory settings are refused by `lint`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { postgresBackend } from '../src/state/postgres.ts';
import { shown, sluice } from './support/cli.ts';

const PLAIN_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const TLS_DIR = resolve(import.meta.dirname, '..', '.services', 'postgres', 'tls');
const CA = join(TLS_DIR, 'ca.pem');
const PASSWORD = 'sluice-tls';
const TLS_URL = 'postgres://sluice_tls:${PG_PASSWORD}@127.0.0.1:5432/sluice';
const suffix = randomUUID().slice(0, 8);
const input = `tls_in_${suffix}`;
const output = `tls_out_${suffix}`;
const ROWS = 500;

let db: pg.Client;
let dir: string;

before(async () => {
  db = new pg.Client({ connectionString: PLAIN_URL });
  await db.connect();
  await db.query(`CREATE TABLE ${input} (id int PRIMARY KEY, name text)`);
  await db.query(`INSERT INTO ${input} SELECT g, 'n' || g FROM generate_series(1, ${ROWS}) g`);
  await db.query(`CREATE TABLE ${output} (id int, name text)`);
  await db.query(`GRANT SELECT ON ${input} TO sluice_tls, sluice_cert`);
  await db.query(`GRANT INSERT, SELECT ON ${output} TO sluice_tls, sluice_cert`);
  // The checkpoint store's table is made by `sluice`, who owns it for every other test too.
  await (await postgresBackend({ url: PLAIN_URL, namespace: `tls-${suffix}` })).close();
  await db.query('GRANT ALL ON sluice_state TO sluice_tls');
  dir = mkdtempSync(join(tmpdir(), 'sluice-pg-tls-'));
});

after(async () => {
  await db.query(`DROP TABLE IF EXISTS ${input}`);
  await db.query(`DROP TABLE IF EXISTS ${output}`);
  await db.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

/** A pipeline reading `input` with the `connections.db.postgres` settings `connection`. */
function reading(
  name: string,
  connection: string,
  out = `file: { path: ${name}.jsonl, format: jsonl }`,
  extra = '',
) {
  return write(
    `${name}.yaml`,
    `name: ${name}
connections:
  db:
    postgres: ${connection}
input:
  postgres: { connection: db, table: ${input}, column: id }
output:
  ${out}
${extra}`,
  );
}

describe('PostgreSQL over TLS', () => {
  it('source, sink and checkpoint store connect over TLS (password and client certificate)', async () => {
    const sinkUrl =
      `postgres://sluice_cert@127.0.0.1:5432/sluice?sslmode=verify-full&sslrootcert=${CA}` +
      `&sslcert=${join(TLS_DIR, 'client.pem')}&sslkey=${join(TLS_DIR, 'client.key')}`;
    const file = reading(
      'tls-copy',
      `{ url: "${TLS_URL}", tls: { ca: ${CA} } }`,
      `postgres: { url: "${sinkUrl}", table: ${output}, batchSize: 100 }`,
      `checkpoint: { interval: 200ms, store: "${TLS_URL}?sslmode=verify-ca", tls: { ca: ${CA} }, namespace: tls-${suffix} }\n`,
    );
    const r = sluice(['run', file], { cwd: dir, env: { PG_PASSWORD: PASSWORD } });
    assert.equal(r.code, 0, shown(r));
    const rows = await db.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM ${output}`);
    assert.deepEqual(rows.rows[0], { n: ROWS, d: ROWS });
    // Every connection was TLS: pg_hba.conf refuses `sluice_tls` and `sluice_cert` without it (the
    // refusals below show that), and the checkpoint store connects as `sluice_tls`.
    assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), shown(r));
  });

  it('refusals: one line saying which and what to do, no retrying, never the password', () => {
    const wrong = 'ZZWRONGZZ-pw';
    const cases: [what: string, connection: string, password: string, expected: RegExp][] = [
      [
        'untrusted certificate',
        `{ url: "${TLS_URL}", tls: true }`,
        PASSWORD,
        /TLS certificate of PostgreSQL at `127\.0\.0\.1:5432` is not trusted.*set `tls\.ca` to the CA that signed it/,
      ],
      [
        'wrong password',
        `{ url: "${TLS_URL}", tls: { ca: ${CA} } }`,
        wrong,
        /PostgreSQL at `127\.0\.0\.1:5432` refused the password of user `sluice_tls`.*check the password in `url`/,
      ],
      [
        'TLS required by the server, not configured',
        `{ url: "${TLS_URL}" }`,
        PASSWORD,
        /accepts user `sluice_tls` on database `sluice` only over TLS.*add `tls: \{ ca: … \}`/,
      ],
      [
        'a server name the certificate does not carry',
        `{ url: "${TLS_URL}", tls: { ca: ${CA}, servername: db.example.com } }`,
        PASSWORD,
        /TLS certificate of PostgreSQL at `127\.0\.0\.1:5432` names another host.*`tls\.servername`/,
      ],
    ];
    for (const [what, connection, password, expected] of cases) {
      const r = sluice(['run', reading(`refused-${what.split(' ')[0]}`, connection)], {
        cwd: dir,
        env: { PG_PASSWORD: password },
      });
      assert.equal(r.code, 2, `${what}: ${shown(r)}`);
      const errors = r.stderr.split('\n').filter((l) => /^Error/.test(l));
      assert.equal(errors.length, 1, `${what}: ${shown(r)}`);
      assert.match(errors[0] ?? '', expected, `${what}: ${shown(r)}`);
      assert.doesNotMatch(r.stderr, /Waiting for PostgreSQL|retrying/, `${what}: ${shown(r)}`);
      assert.ok(!r.stderr.includes(password), `${what}: ${shown(r)}`);
    }
  });

  it('lint refuses `sslmode=prefer` and `sslmode=disable` beside `tls:`', () => {
    const prefer = sluice(['lint', reading('prefer', `{ url: "${TLS_URL}?sslmode=prefer" }`)], { cwd: dir });
    assert.equal(prefer.code, 1, shown(prefer));
    assert.match(
      prefer.stdout + prefer.stderr,
      /`sslmode=prefer` falls back to plaintext.*use `sslmode=require`/,
    );
    const both = sluice(
      ['lint', reading('both', `{ url: "${TLS_URL}?sslmode=disable", tls: { ca: ${CA} } }`)],
      {
        cwd: dir,
      },
    );
    assert.equal(both.code, 1, shown(both));
    assert.match(
      both.stdout + both.stderr,
      /`sslmode=disable` in `url` turns TLS off, and `tls:` asks for it/,
    );
  });
});
