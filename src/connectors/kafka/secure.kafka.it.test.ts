/**
 * Secured Kafka through the CLI against the real broker's secure listeners
 * (`npm run services -- up kafka`): SASL_SSL with SCRAM-SHA-512 on 127.0.0.1:9094 and SSL with
 * client certificates on 9095, declared once under `connections:`; the topics are made with
 * `sluice kafka topics create` and `createTopic`. Refused connections (wrong password, untrusted
 * certificate, plaintext on the TLS port) fail at once with one line that never shows the password.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { main } from '../../cli/main.ts';
import { createTopic, fresh, produce, readValues } from './test-helpers.ts';

const PLAIN = ['127.0.0.1:9092'];
const TLS = resolve(import.meta.dirname, '..', '..', '..', '.services', 'kafka', 'tls');
const CA = join(TLS, 'ca.pem');
const PASSWORD = 'sluice-secret';
const dir = mkdtempSync(join(tmpdir(), 'sluice-secure-it-'));
after(() => rmSync(dir, { recursive: true, force: true }));

class Capture {
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

async function cli(argv: string[], env: Record<string, string> = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { stdout, stderr, env: { KAFKA_PASSWORD: PASSWORD, ...env } });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const SCRAM = `{ brokers: 127.0.0.1:9094, tls: { ca: ${CA} }, sasl: { mechanism: scram-sha-512, username: sluice, password: "\${KAFKA_PASSWORD}" } }`;
const MTLS = `{ brokers: 127.0.0.1:9095, tls: { ca: ${CA}, cert: ${join(TLS, 'client.pem')}, key: ${join(TLS, 'client.key')} } }`;

function pipeline(name: string, connection: string, input: string, output: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
connections:
  secure:
    kafka: ${connection}
input:
  kafka: { connection: secure, topic: ${input}, idleTimeout: 3s }
output:
  kafka: { connection: secure, topic: ${output}, createTopic: { partitions: 2 }${extra} }
`,
  );
  return file;
}

const records = Array.from({ length: 50 }, (_, i) => ({
  key: `k${i % 7}`,
  value: JSON.stringify({ id: i }),
}));
const ids = (values: string[]) =>
  values.map((v) => (JSON.parse(v) as { id: number }).id).sort((a, b) => a - b);

describe('kafka over SASL_SSL and mutual TLS', () => {
  it('SCRAM-SHA-512: topics made by the CLI, source → sink through the CLI', async () => {
    const input = fresh('scram-in');
    const output = fresh('scram-out');
    const sasl = [
      '--brokers',
      '127.0.0.1:9094',
      '--ca',
      CA,
      '--sasl',
      'scram-sha-512',
      '--username',
      'sluice',
    ];
    const created = await cli([
      'kafka',
      'topics',
      'create',
      input,
      '--partitions',
      '3',
      ...sasl,
      '--password-env',
      'KAFKA_PASSWORD',
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /Created topic/);
    await produce(PLAIN, input, records);
    const r = await cli(['run', pipeline(fresh('scram'), SCRAM, input, output)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      ids(await readValues(PLAIN, output)),
      records.map((_, i) => i),
    );
    const described = await cli([
      'kafka',
      'topics',
      'describe',
      output,
      '--json',
      ...sasl,
      '--password-env',
      'KAFKA_PASSWORD',
    ]);
    assert.equal(described.code, 0, described.stderr);
    assert.equal((JSON.parse(described.stdout) as { partitions: unknown[] }).partitions.length, 2);
    const listed = await cli(['kafka', 'topics', 'list', ...sasl, '--password-env', 'KAFKA_PASSWORD']);
    assert.ok(listed.stdout.split('\n').includes(output));
    assert.ok(!`${r.stderr}${created.stdout}${described.stdout}`.includes(PASSWORD));
  });

  /** An unsecured JWT (`alg: none`), which the test broker's OAUTHBEARER listener accepts for `sub`. */
  function unsecuredJwt(sub: string): string {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + 3600 })}.`;
  }

  for (const [mechanism, sasl] of [
    ['scram-sha-256', `mechanism: scram-sha-256, username: sluice, password: "\${KAFKA_PASSWORD}"`],
    ['plain', `mechanism: plain, username: sluice, password: "\${KAFKA_PASSWORD}"`],
    ['oauthbearer (a token from `tokenCommand`)', 'mechanism: oauthbearer, tokenCommand: "cat TOKEN_FILE"'],
  ] as const) {
    it(`SASL_SSL with ${mechanism}: source → sink through the CLI`, async () => {
      const tokenFile = join(dir, `${fresh('token')}.jwt`);
      writeFileSync(tokenFile, unsecuredJwt('sluice'));
      const input = await createTopic(PLAIN, 'sasl-in', 2);
      const output = fresh('sasl-out');
      await produce(PLAIN, input, records);
      const connection = `{ brokers: 127.0.0.1:9094, tls: { ca: ${CA} }, sasl: { ${sasl.replace('TOKEN_FILE', tokenFile)} } }`;
      const r = await cli(['run', pipeline(fresh('sasl'), connection, input, output)]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        ids(await readValues(PLAIN, output)),
        records.map((_, i) => i),
      );
      assert.ok(!r.stderr.includes(PASSWORD));
    });
  }

  it('mutual TLS with checkpoints (the commit path over the same connection)', async () => {
    const input = await createTopic(PLAIN, 'mtls-in', 2);
    const output = fresh('mtls-out');
    await produce(PLAIN, input, records);
    const name = fresh('mtls');
    const file = pipeline(name, MTLS, input, output);
    writeFileSync(
      file,
      `${readFileSync(file, 'utf8')}checkpoint: { interval: 1s, dir: ${join(dir, name)} }\n`,
    );
    const r = await cli(['run', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      ids(await readValues(PLAIN, output)),
      records.map((_, i) => i),
    );
  });

  it('refusals: one line saying which and what to do, never the password, no waiting', async () => {
    const input = await createTopic(PLAIN, 'refused', 1);
    const cases: [string, string, RegExp][] = [
      [
        'wrong password',
        `{ brokers: 127.0.0.1:9094, tls: { ca: ${CA} }, sasl: { mechanism: scram-sha-512, username: sluice, password: "\${KAFKA_PASSWORD}" } }`,
        /refused SASL `scram-sha-512` login of user `sluice`.*check `sasl.username` and `sasl.password`/,
      ],
      [
        'untrusted certificate',
        `{ brokers: 127.0.0.1:9094, tls: true, sasl: { mechanism: scram-sha-512, username: sluice, password: "\${KAFKA_PASSWORD}" } }`,
        /TLS certificate of Kafka at `127.0.0.1:9094` is not trusted.*set `tls.ca`/,
      ],
      [
        'plaintext on the TLS port',
        '{ brokers: 127.0.0.1:9094 }',
        /expects TLS on that listener.*add `tls:`/,
      ],
      [
        'TLS on the plaintext port',
        `{ brokers: 127.0.0.1:9092, tls: { ca: ${CA} } }`,
        /does not speak TLS.*remove `tls:`/,
      ],
    ];
    for (const [what, connection, expected] of cases) {
      const wrong = 'not-the-password-0123';
      const r = await cli(['run', pipeline(fresh('refused'), connection, input, fresh('never'))], {
        KAFKA_PASSWORD: what === 'wrong password' ? wrong : PASSWORD,
      });
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, expected, what);
      assert.ok(!r.stderr.includes(wrong) && !r.stderr.includes(PASSWORD), `${what}: ${r.stderr}`);
    }
  });
});
