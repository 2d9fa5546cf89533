// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
/**
 * Values from `${VAR}` never appear in what loading and building a pipeline file say: a field
 * that fails validation names the variable instead, `--set` values too, and a component that
 * quotes its config when it refuses it has the value replaced.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { z } from 'zod';
import type { SluiceError } from '../core/errors.ts';
import { forgetSecrets } from '../core/secrets.ts';
import { formatProblem, problemsOf } from '../spec/problems.ts';
import { defineComponent } from '../spec/registry.ts';
import { buildPipeline } from './build.ts';
import { parsePipeline } from './load.ts';
import { testRegistry } from './test-registry.ts';

const SECRET = 'ZZSECRETZZ';
const URL_WITH_SECRET = `postgress://sluice:${SECRET}@db.example/app`;

/** The test components, and a sink with a URL field that refuses to be built. */
function registry() {
  return testRegistry().add(
    defineComponent({
      name: 'vault',
      kind: 'sink',
      stability: 'experimental',
      summary: 'A sink with a connection URL.',
      config: z.object({
        url: z.string().regex(/^postgres:\/\//, 'must be a URL such as `postgres://user:password@host/db`'),
        mode: z.enum(['insert', 'upsert']).default('insert'),
        size: z.number().int().default(1),
      }),
      create: (c) => {
        throw new Error(`cannot reach ${c.url} in mode ${c.mode}`);
      },
    }),
  );
}

const lines = (problems: readonly Parameters<typeof formatProblem>[0][]) =>
  problems.map(formatProblem).join('\n');

describe('values from environment variables in problems', () => {
  // Each test starts with no secret known, as a process that loads one file does.
  beforeEach(forgetSecrets);

  it('names the variable of a value that fails validation, never the value', () => {
    const text = [
      'input: { memory: {} }',
      'output: { collect: { id: x } }',
      'dlq:',
      '  vault:',
      "    url: '${PG_URL}'",
      '    mode: ${MODE}',
      '    size: ${SIZE}',
    ].join('\n');
    const env = { PG_URL: URL_WITH_SECRET, MODE: `${SECRET}-mode`, SIZE: `${SECRET}1` };
    const { problems } = parsePipeline(text, 'p.yaml', { registry: registry(), env });
    const shown = lines(problems);
    assert.doesNotMatch(shown, new RegExp(SECRET), shown);
    assert.match(shown, /dlq\.vault\.url: must be a URL such as .*\(got the value of `\$\{PG_URL\}`\)/);
    assert.match(shown, /dlq\.vault\.mode: the value of `\$\{MODE\}` is not one of `insert` or `upsert`/);
    assert.match(shown, /dlq\.vault\.size: expected a number, got the value of `\$\{SIZE\}`/);
  });

  it('names the text of a value built from a variable', () => {
    const text = "input: { memory: {} }\noutput: { vault: { url: 'mysql://u:${PW}@db/app' } }\n";
    const { problems } = parsePipeline(text, 'p.yaml', { registry: registry(), env: { PW: SECRET } });
    assert.match(lines(problems), /got the value of `mysql:\/\/u:\$\{PW\}@db\/app`/);
    assert.doesNotMatch(lines(problems), new RegExp(SECRET));
  });

  it('does the same for a `--set` value that takes a variable', () => {
    const text = 'input: { memory: {} }\noutput: { collect: { id: x } }\n';
    const { problems } = parsePipeline(text, 'p.yaml', {
      registry: registry(),
      env: { PG_URL: URL_WITH_SECRET },
      set: ['output={ vault: { url: "${PG_URL}" } }'],
    });
    assert.match(lines(problems), /output\.vault\.url: .*the value of `\$\{PG_URL\}`/);
    assert.doesNotMatch(lines(problems), new RegExp(SECRET));
  });

  it('redacts the value from what a component says when it cannot be built', async () => {
    const text = "input: { memory: {} }\noutput: { vault: { url: 'postgres://sluice:${PW}@db/app' } }\n";
    const { config, problems } = parsePipeline(text, 'p.yaml', { registry: registry(), env: { PW: SECRET } });
    assert.ok(config, lines(problems));
    const err = await buildPipeline(config).then(
      () => assert.fail('built'),
      (e: unknown) => e as SluiceError,
    );
    assert.doesNotMatch(err.message, new RegExp(SECRET), err.message);
    assert.match(err.message, /cannot reach postgres:\/\/sluice:\$\{PW\}@db\/app in mode insert/);
    assert.doesNotMatch(lines(problemsOf(err)), new RegExp(SECRET));
  });
});
