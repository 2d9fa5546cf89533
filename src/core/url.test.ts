import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionUrlProblem, redactUrl, urlPasswords } from './url.ts';

/** A password with every character that ends a URL's user-info early. */
const HARD = 'p@ss#w/rd?x';

describe('redactUrl', () => {
  it('hides the password and keeps the user, host, port, database and query', () => {
    assert.equal(
      redactUrl('postgres://sluice:secret@db:5432/app?sslmode=require'),
      'postgres://sluice:***@db:5432/app?sslmode=require',
    );
    assert.equal(redactUrl('redis://:secret@127.0.0.1:6379/2'), 'redis://:***@127.0.0.1:6379/2');
    assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactUrl('postgres://sluice@db/app'), 'postgres://sluice@db/app');
  });

  it('hides a password holding `@` then `#`, `/` or `?` whole, up to the last `@`', () => {
    for (const url of [
      `postgres://sluice:${HARD}@127.0.0.1:5432/sluice`,
      'postgres://sluice:ZZ@SE/CRET?ZZ@db/app',
      'redis://:ZZ@SE#CRET@db:6379',
    ]) {
      const shown = redactUrl(url);
      assert.doesNotMatch(shown, /ZZ|SE|CRET|p@ss|w\/rd|rd\?x/, shown);
      assert.match(shown, /^(postgres|redis):\/\/(sluice)?:\*\*\*@(127\.0\.0\.1|db)/);
    }
  });

  it('hides a `password=` query parameter', () => {
    assert.equal(
      redactUrl('postgres://db/app?user=u&password=secret&x=1'),
      'postgres://db/app?user=u&password=***&x=1',
    );
  });

  it('shows nothing of a text that is no URL', () => {
    assert.equal(redactUrl('sluice:secret@db'), '(unparsable URL)');
  });
});

describe('urlPasswords', () => {
  it('gives the password as written and percent-decoded', () => {
    assert.deepEqual(urlPasswords('redis://:p%40ss@h:6379'), ['p%40ss', 'p@ss']);
    assert.deepEqual(urlPasswords(`postgres://u:${HARD}@h/db`), [HARD]);
    assert.deepEqual(urlPasswords('postgres://u@h/db'), []);
    assert.deepEqual(urlPasswords('not a url'), []);
  });
});

describe('connectionUrlProblem', () => {
  it('accepts what pg and ioredis read as written, `@` and `:` in a password included', () => {
    for (const url of [
      'postgres://sluice:sluice@127.0.0.1:5432/sluice',
      'postgres://u@srv:p@ss:word@h/db',
      `postgres://sluice:${encodeURIComponent(HARD)}@127.0.0.1/sluice`,
      'redis://127.0.0.1:6379/0',
      'rediss://default:p%23w@cache:6380',
    ])
      assert.equal(connectionUrlProblem(url), undefined, url);
  });

  it('rejects a password holding `@` then `#`, `/` or `?`, says to percent-encode, and never quotes it', () => {
    for (const url of [
      `postgres://sluice:${HARD}@127.0.0.1:5432/sluice`,
      'postgres://sluice:ZZ@SE/CRET@db/app',
      'postgres://sluice:ZZ@SE?CRET@db/app',
      'redis://:ZZ@SE#CRET@db:6379',
      'postgres://sluice:pa#ss@db/app',
    ]) {
      const problem = connectionUrlProblem(url) ?? '';
      assert.match(problem, /percent-encode/i, url);
      assert.match(problem, /`%40`/);
      assert.doesNotMatch(problem, /ZZ|SE|CRET|p@ss|pa#ss/);
    }
  });

  it('rejects text that is no URL without quoting it', () => {
    assert.match(connectionUrlProblem('sluice:ZZSECRET@db') ?? '', /is not a URL/);
    assert.doesNotMatch(connectionUrlProblem('postgres://u:ZZSECRET@db:99999999/x') ?? 'x', /ZZSECRET/);
  });
});
