// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
/**
 * Redis over TLS through the real `sluice` command, against the shared server's TLS port
 * (`npm run services -- up redis`: 127.0.0.1:6380, which speaks nothing but TLS, so a run that
 * reads or writes there has used it). The source (ACL user `sluice` over `rediss://`, declared
 * once under `connections:`), the sink (`redis://` plus `tls:` with a client certificate) and the
 * checkpoint store each connect over TLS. Refusals (an untrusted certificate, a wrong password,
 * a plaintext client on the TLS port, TLS on the plaintext port) fail with one line saying which
 * and what to do, without reconnecting and never showing the password.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { shown, sluice } from './support/cli.ts';

const PLAIN_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TLS_DIR = resolve(import.meta.dirname, '..', '.services', 'redis', 'tls');
const CA = join(TLS_DIR, 'ca.pem');
const PASSWORD = 'sluice-redis';
const id = randomUUID().slice(0, 8);
const input = `sluice-tls-in-${id}`;
const output = `sluice-tls-out-${id}`;
const ENTRIES = 300;

let redis: Redis;
let dir: string;

before(async () => {
  redis = new Redis(PLAIN_URL);
  const p = redis.pipeline();
  for (let i = 0; i < ENTRIES; i++) p.xadd(input, '*', 'data', JSON.stringify({ id: i }));
  await p.exec();
  dir = mkdtempSync(join(tmpdir(), 'sluice-redis-tls-'));
  writeFileSync(join(dir, 'in.jsonl'), '{"id":1}\n');
});

after(async () => {
  await redis.del(input, output);
  redis.disconnect();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

describe('Redis over TLS', () => {
  it('source, sink and checkpoint store connect over TLS (password and client certificate)', async () => {
    const file = write(
      'tls-copy.yaml',
      `name: redis-tls-${id}
connections:
  secure:
    redis: { url: "rediss://sluice:\${REDIS_PASSWORD}@127.0.0.1:6380", tls: { ca: ${CA} } }
input:
  redis: { connection: secure, stream: ${input}, group: g, start: "0", field: data, idleTimeout: 2s }
output:
  redis:
    url: redis://127.0.0.1:6380
    tls: { ca: ${CA}, cert: ${join(TLS_DIR, 'client.pem')}, key: ${join(TLS_DIR, 'client.key')} }
    stream: ${output}
    field: data
checkpoint: { interval: 200ms, store: "rediss://127.0.0.1:6380", tls: { ca: ${CA} }, namespace: redis-tls-${id} }
`,
    );
    const r = sluice(['run', file], { cwd: dir, env: { REDIS_PASSWORD: PASSWORD } });
    assert.equal(r.code, 0, shown(r));
    const entries = await redis.xrange(output, '-', '+');
    const ids = entries.map(([, fields]) => (JSON.parse(fields[1] ?? '{}') as { id: number }).id);
    assert.deepEqual(
      [...new Set(ids)].sort((a, b) => a - b),
      Array.from({ length: ENTRIES }, (_, i) => i),
    );
    assert.ok(!shown(r).includes(PASSWORD), shown(r));
  });

  it('refusals: one line saying which and what to do, no reconnecting, never the password', () => {
    const wrong = 'ZZWRONGZZ-pw';
    const cases: [what: string, redisSettings: string, expected: RegExp][] = [
      [
        'untrusted certificate',
        'url: "rediss://127.0.0.1:6380"',
        /TLS certificate of Redis at `127\.0\.0\.1:6380` is not trusted.*set `tls\.ca` to the CA that signed it/,
      ],
      [
        'wrong password',
        `url: "rediss://sluice:\${REDIS_PASSWORD}@127.0.0.1:6380", tls: { ca: ${CA} }`,
        /Redis at `127\.0\.0\.1:6380` refused the password of user `sluice`.*check the user and password in `url`/,
      ],
      [
        'a plaintext client on the TLS port',
        'url: "redis://127.0.0.1:6380"',
        /Redis at `127\.0\.0\.1:6380` expects TLS on that port.*use a `rediss:\/\/` URL/,
      ],
      [
        'TLS on the plaintext port',
        `url: "rediss://127.0.0.1:6379", tls: { ca: ${CA} }`,
        /Redis at `127\.0\.0\.1:6379` does not speak TLS on that port/,
      ],
    ];
    for (const [what, settings, expected] of cases) {
      const file = write(
        `refused-${what.split(' ').join('-')}.yaml`,
        `input: { file: { path: in.jsonl, format: jsonl } }\noutput: { redis: { ${settings}, stream: ${output}-never } }\n`,
      );
      const r = sluice(['run', file], { cwd: dir, env: { REDIS_PASSWORD: wrong } });
      assert.equal(r.code, 2, `${what}: ${shown(r)}`);
      const errors = r.stderr.split('\n').filter((l) => /^Error/.test(l));
      assert.equal(errors.length, 1, `${what}: ${shown(r)}`);
      assert.match(errors[0] ?? '', expected, `${what}: ${shown(r)}`);
      assert.doesNotMatch(r.stderr, /retrying/, `${what}: ${shown(r)}`);
      assert.ok(!shown(r).includes(wrong), `${what}: ${shown(r)}`);
    }
  });
});
