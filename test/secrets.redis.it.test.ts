// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
/**
 * A Redis password holding `@`, `#`, `/` and `?` (an ACL user of the shared server, made for
 * this test): it works percent-encoded, is refused as written without being shown (ioredis
 * would take part of it for the host), and a wrong one is one clear error without it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { shown, sluice } from './support/cli.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'ZZSECRETZZ@zzfragment#/?x';
const LEAKS = /ZZSECRETZZ|zzfragment/;
const id = randomUUID().slice(0, 8);
const user = `sluice-secrets-${id}`;
const stream = `sluice-secrets-${id}`;

let redis: Redis;
let dir: string;
const { hostname, port } = new URL(REDIS_URL);
const userUrl = (password: string) => `redis://${user}:${password}@${hostname}:${port || 6379}`;

before(async () => {
  redis = new Redis(REDIS_URL);
  await redis.call('ACL', 'SETUSER', user, 'on', `>${PASSWORD}`, `~${stream}`, '+@all');
  dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-redis-'));
  writeFileSync(join(dir, 'in.jsonl'), '{"id":1}\n{"id":2}\n');
  writeFileSync(
    join(dir, 'to-redis.yaml'),
    `input: { file: { path: in.jsonl, format: jsonl } }\noutput: { redis: { url: '\${REDIS_URL}', stream: ${stream} } }\n`,
  );
});

after(async () => {
  await redis.call('ACL', 'DELUSER', user);
  await redis.del(stream);
  redis.disconnect();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a Redis password holding `@`, `#`, `/` and `?`', () => {
  it('connects once percent-encoded', async () => {
    const r = sluice(['run', 'to-redis.yaml'], {
      cwd: dir,
      env: { REDIS_URL: userUrl(encodeURIComponent(PASSWORD)) },
    });
    assert.equal(r.code, 0, shown(r));
    assert.equal(await redis.xlen(stream), 2);
    assert.doesNotMatch(shown(r), LEAKS);
  });

  it('is refused as written, with how to fix it and none of it shown', () => {
    const r = sluice(['run', 'to-redis.yaml'], { cwd: dir, env: { REDIS_URL: userUrl(PASSWORD) } });
    assert.equal(r.code, 2, shown(r));
    assert.match(r.stderr, /output\.redis\.url: the URL has an `@` after .*Percent-encode/);
    assert.doesNotMatch(shown(r), LEAKS);
  });

  it('gives one clear error without the password when it is wrong', () => {
    const wrong = 'ZZWRONGZZ@x#/?y';
    const r = sluice(['run', 'to-redis.yaml'], {
      cwd: dir,
      env: { REDIS_URL: userUrl(encodeURIComponent(wrong)) },
    });
    assert.equal(r.code, 2, shown(r));
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error'));
    assert.equal(errors.length, 1, shown(r));
    assert.match(errors[0] ?? '', /Redis at `[\d.:]+` refused the password of user `sluice-secrets-\w+`/);
    assert.doesNotMatch(shown(r), /ZZWRONGZZ|x%23|%2F%3Fy/);
  });
});
