// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the replacements spell `${VAR}` literally
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  forgetSecrets,
  MIN_SECRET_LENGTH,
  redactSecrets,
  redactSecretsDeep,
  registerSecret,
} from './secrets.ts';

afterEach(forgetSecrets);

describe('secrets', () => {
  it('replaces every occurrence of a registered value', () => {
    registerSecret('hunter2!', '${PGPASSWORD}');
    assert.equal(redactSecrets('hunter2! then hunter2!'), '${PGPASSWORD} then ${PGPASSWORD}');
    assert.equal(redactSecrets('nothing here'), 'nothing here');
  });

  it('replaces a value that contains another one whole', () => {
    registerSecret('ZZSECRETZZ', '***');
    registerSecret('postgres://u:ZZSECRETZZ@db/app', '${PG_URL}');
    assert.equal(redactSecrets('at postgres://u:ZZSECRETZZ@db/app, ZZSECRETZZ'), 'at ${PG_URL}, ***');
  });

  it('also finds a value written inside JSON', () => {
    registerSecret('pa"ss\\word', '${PW}');
    assert.equal(redactSecrets(JSON.stringify({ url: 'u:pa"ss\\word@h' })), '{"url":"u:${PW}@h"}');
  });

  it(`leaves values shorter than ${MIN_SECRET_LENGTH} characters alone`, () => {
    registerSecret('10', '${N}');
    assert.equal(redactSecrets('after 10 tries'), 'after 10 tries');
  });

  it('redacts the strings of a JSON-like value, keys included, and keeps other values', () => {
    registerSecret('/tmp/ZZSECRETZZ', '${DIR}');
    const when = new Date(0);
    assert.deepEqual(
      redactSecretsDeep({
        file: '/tmp/ZZSECRETZZ/in.jsonl',
        line: 3,
        list: ['/tmp/ZZSECRETZZ'],
        '/tmp/ZZSECRETZZ': true,
        when,
      }),
      { file: '${DIR}/in.jsonl', line: 3, list: ['${DIR}'], '${DIR}': true, when },
    );
  });
});
