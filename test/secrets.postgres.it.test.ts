// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
/**
 * Secrets against a real PostgreSQL server (a private one with password authentication, so
 * roles and passwords can be made up): a password holding `@`, `#`, `/` and `?` works once
 * percent-encoded and is refused, whole and unquoted, as written; a wrong password is one clear
 * line without it; and a secret planted in every place a pipeline file can take one (a path,
 * a URL, a field that fails validation, a connection that fails) is in nothing the command
 * prints or writes to its DLQ.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type SluiceRun, shown, sluice } from './support/cli.ts';
import { type PrivatePostgres, startPrivatePostgres } from './support/private-postgres.ts';

/** The app role's password: `@` then `#`, `/` and `?`, so the clients would misread it unencoded. */
const PASSWORD = 'ZZSECRETZZ@zzfragment#/?x';
/** What must never be printed: the password, and the part the clients would take for a host. */
const LEAKS = /ZZSECRETZZ|zzfragment/;

let server: PrivatePostgres;
let dir: string;

const appUrl = (password: string) => `postgres://app:${password}@127.0.0.1:${server.port}/postgres`;

async function sql(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}

before(async () => {
  server = await startPrivatePostgres({ password: 'admin-pw' });
  await sql(`CREATE ROLE app LOGIN PASSWORD '${PASSWORD.replaceAll("'", "''")}'`);
  await sql('CREATE TABLE secrets_t (id int)');
  await sql('GRANT ALL ON secrets_t TO app');
  dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
  writeFileSync(join(dir, 'in.jsonl'), '{"id":1}\n{"id":2}\n');
  writeFileSync(
    join(dir, 'to-postgres.yaml'),
    "input: { file: { path: in.jsonl, format: jsonl } }\noutput: { postgres: { url: '${PG_URL}', table: secrets_t } }\n",
  );
});

after(async () => {
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const all = (...runs: SluiceRun[]) => runs.map(shown).join('\n');

describe('a password holding `@`, `#`, `/` and `?`', () => {
  it('connects once percent-encoded', async () => {
    const r = sluice(['run', 'to-postgres.yaml'], {
      cwd: dir,
      env: { PG_URL: appUrl(encodeURIComponent(PASSWORD)) },
    });
    assert.equal(r.code, 0, shown(r));
    assert.equal((await sql('SELECT count(*)::int AS n FROM secrets_t')).rows[0].n, 2);
    assert.doesNotMatch(all(r), LEAKS);
  });

  it('is refused as written, by lint and run, with how to fix it and none of it shown', () => {
    const env = { PG_URL: appUrl(PASSWORD) };
    const lint = sluice(['lint', 'to-postgres.yaml'], { cwd: dir, env });
    const run = sluice(['run', 'to-postgres.yaml'], { cwd: dir, env });
    assert.equal(lint.code, 1, shown(lint));
    assert.equal(run.code, 2, shown(run));
    for (const r of [lint, run]) {
      assert.match(
        r.stdout + r.stderr,
        /output\.postgres\.url: the URL has an `@` after a `\/`, `\?` or `#`.*Percent-encode/,
        shown(r),
      );
    }
    // Refused before connecting: nothing went to DNS as a host name.
    assert.match(run.stderr, /nothing was run/);
    assert.doesNotMatch(all(lint, run), LEAKS);
  });

  it('gives one clear line without the password when it is wrong', () => {
    const wrong = 'ZZWRONGZZ@x#/?y';
    const r = sluice(['run', 'to-postgres.yaml'], {
      cwd: dir,
      env: { PG_URL: appUrl(encodeURIComponent(wrong)) },
    });
    assert.equal(r.code, 2, shown(r));
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error'));
    assert.equal(errors.length, 1, shown(r));
    assert.match(
      errors[0] ?? '',
      /^Error \[SLUICE_CONFIG\]: opening stage `output`: PostgreSQL at `127\.0\.0\.1:\d+` refused the password of user `app` .*; check the password in `url`$/,
    );
    assert.doesNotMatch(all(r), /ZZWRONGZZ|x%23|%2F%3Fy/);
  });
});

describe('a secret planted everywhere', () => {
  it('is in no output, no DLQ and no lint report', () => {
    const SECRET = 'ZZPLANTEDZZ';
    const work = join(dir, 'plant');
    const data = join(work, `data-${SECRET}`);
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'in.jsonl'), '{"id":1}\n{"id": oops}\n');
    // In a path: the input, the output and the DLQ file; a bad line makes a dead letter.
    writeFileSync(
      join(work, 'paths.yaml'),
      [
        'maxErrorRate: 1', // one line, and it is the bad one
        'input: { file: { path: "${DATA}/in.jsonl", format: jsonl } }',
        'output: { file: { path: "${DATA}/out.jsonl", format: jsonl } }',
        'dlq: { file: { path: "${DATA}/dead.jsonl", format: jsonl } }',
      ].join('\n'),
    );
    // In a URL's password, wrong, so the connection fails.
    writeFileSync(
      join(work, 'connect.yaml'),
      [
        'input: { file: { path: "${DATA}/in.jsonl", format: jsonl } }',
        `output: { postgres: { url: 'postgres://app:\${PG_PASSWORD}@127.0.0.1:${server.port}/postgres', table: secrets_t } }`,
        'dlq: { file: { path: "${DATA}/dead-connect.jsonl", format: jsonl } }',
      ].join('\n'),
    );
    // In fields that fail validation.
    writeFileSync(
      join(work, 'invalid.yaml'),
      [
        'input: { file: { path: "${DATA}/in.jsonl", format: "${FORMAT}" } }',
        'output: { file: { path: out.jsonl, format: jsonl } }',
        "dlq: { postgres: { url: '${BAD_URL}', table: dead } }",
      ].join('\n'),
    );
    const env = {
      DATA: data,
      PG_PASSWORD: SECRET,
      FORMAT: `jsonl-${SECRET}`,
      BAD_URL: `postgress://app:${SECRET}@127.0.0.1/postgres`,
    };
    const paths = sluice(['run', 'paths.yaml'], { cwd: work, env });
    const connect = sluice(['run', 'connect.yaml'], { cwd: work, env });
    const lint = sluice(['lint', 'invalid.yaml'], { cwd: work, env });
    const run = sluice(['run', 'invalid.yaml'], { cwd: work, env });
    const runSet = sluice(['run', 'paths.yaml', '--set', 'dlq={ postgres: { url: "${BAD_URL}" } }'], {
      cwd: work,
      env,
    });

    // Each did what it is here for.
    assert.equal(paths.code, 0, shown(paths));
    assert.match(paths.stderr, /1 to DLQ/);
    assert.equal(connect.code, 2, shown(connect));
    assert.match(connect.stderr, /refused the password of user `app`/);
    assert.equal(lint.code, 1, shown(lint));
    assert.match(lint.stdout, /input\.file\.format: the value of `\$\{FORMAT\}` is not one of/);
    assert.match(lint.stdout, /dlq\.postgres\.url: must be a URL .*\(got the value of `\$\{BAD_URL\}`\)/);
    assert.equal(run.code, 2, shown(run));
    assert.equal(runSet.code, 2, shown(runSet));
    assert.match(runSet.stderr, /the value of `\$\{BAD_URL\}`/);

    const dead = readFileSync(join(data, 'dead.jsonl'), 'utf8');
    assert.match(dead, /"record":"\{\\"id\\": oops\}"/);
    const deadConnect = existsSync(join(data, 'dead-connect.jsonl'))
      ? readFileSync(join(data, 'dead-connect.jsonl'), 'utf8')
      : '';
    const everything = `${all(paths, connect, lint, run, runSet)}\n--- DLQ\n${dead}${deadConnect}`;
    assert.doesNotMatch(everything, new RegExp(SECRET), everything);
  });
});
