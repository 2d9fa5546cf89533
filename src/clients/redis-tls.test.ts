import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisConnectFailure, redisTlsOptions } from './redis-tls.ts';

describe('redisTlsOptions', () => {
  it('is plaintext for redis:// alone, TLS for rediss:// or with `tls:`', () => {
    assert.equal(redisTlsOptions('redis://127.0.0.1:6379', undefined), undefined);
    assert.deepEqual(redisTlsOptions('rediss://127.0.0.1:6380', undefined), {});
    assert.deepEqual(
      redisTlsOptions('redis://h:6380', { servername: 'cache.example.com', rejectUnauthorized: true }),
      {
        servername: 'cache.example.com',
        rejectUnauthorized: true,
      },
    );
    assert.throws(
      () => redisTlsOptions('redis://h', { ca: '/nope/ca.pem', rejectUnauthorized: true }),
      /reading `tls\.ca`/,
    );
  });
});

describe('redisConnectFailure', () => {
  it('says which refusal it is, naming the user and never the password', async () => {
    const url = 'rediss://app:s3cret@cache.example.com:6380';
    const wrong = await redisConnectFailure(
      new Error('WRONGPASS invalid username-password pair'),
      url,
      undefined,
    );
    assert.match(
      wrong?.message ?? '',
      /^Redis at `cache\.example\.com:6380` refused the password of user `app`/,
    );
    assert.doesNotMatch(wrong?.message ?? '', /s3cret/);
    const noauth = await redisConnectFailure(
      new Error('NOAUTH Authentication required.'),
      'redis://h:1',
      undefined,
      {
        url: 'checkpoint.store',
        tls: 'checkpoint.tls',
      },
    );
    assert.match(
      noauth?.message ?? '',
      /requires a password; put the user and password in `checkpoint\.store`/,
    );
  });

  it('leaves a server that is down to the reconnects', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.equal(await redisConnectFailure(refused, 'redis://127.0.0.1:1', undefined), undefined);
  });
});
