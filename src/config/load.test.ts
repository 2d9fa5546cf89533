// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigProblem, formatProblem } from '../spec/problems.ts';
import { type LoadOptions, parsePipeline } from './load.ts';
import { testRegistry } from './test-registry.ts';

const options: LoadOptions = { registry: testRegistry(), env: {}, baseDir: '/nowhere' };

function problems(yaml: string, opts: Partial<LoadOptions> = {}): ConfigProblem[] {
  return parsePipeline(yaml, 'p.yaml', { ...options, ...opts }).problems;
}

function lines(yaml: string, opts: Partial<LoadOptions> = {}): string[] {
  return problems(yaml, opts).map(formatProblem);
}

const MIN = 'input: { memory: { records: [1] } }\noutput: { collect: { id: t } }\n';

describe('parsePipeline: a valid file', () => {
  it('applies defaults, names stages by role, and names the pipeline after the file', () => {
    const r = parsePipeline(
      `${MIN}pipeline:\n  - tag: { field: a, value: 1 }\n  - tag: { field: b, value: 2 }\n`,
      'dir/my-flow.yaml',
      options,
    );
    assert.deepEqual(r.problems, []);
    const c = r.config;
    assert.ok(c);
    assert.equal(c.name, 'my-flow');
    assert.equal(c.input.stageName, 'input');
    assert.deepEqual(c.input.config, { records: [1], batchSize: 2 });
    assert.deepEqual(
      c.steps.map((s) => s.stageName),
      ['tag', 'tag#2'],
    );
    assert.equal(c.output[0]?.stageName, 'output');
    assert.equal(c.steps[0]?.type === 'component' && (c.steps[0].config as { mode: string }).mode, 'set');
  });

  it('reads a list under `output` as fan-out, with buffers, and named outputs and a dlq', () => {
    const r = parsePipeline(
      `input: { memory: {} }
output:
  - collect: { id: a }
  - collect: { id: b }
    buffer: { size: 4, overflow: dropOldest }
    name: second
outputs:
  late: { collect: { id: l } }
dlq: { collect: { id: d } }
maxErrorRate: 0.5
channelCapacity: 8
`,
      'p.yaml',
      options,
    );
    assert.deepEqual(r.problems, []);
    const c = r.config;
    assert.ok(c);
    assert.deepEqual(
      c.output.map((o) => [o.stageName, o.buffer]),
      [
        ['output[0]', undefined],
        ['second', { size: 4, overflow: 'dropOldest' }],
      ],
    );
    assert.equal(c.outputs.get('late')?.stageName, 'outputs.late');
    assert.equal(c.dlq?.stageName, 'dlq');
    assert.equal(c.maxErrorRate, 0.5);
    assert.equal(c.channelCapacity, 8);
  });

  it('treats `kind:` with nothing after it as an empty config', () => {
    const r = parsePipeline('input:\n  memory:\noutput: { collect: { id: t } }\n', 'p.yaml', options);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.config?.input.config, { records: [], batchSize: 2 });
  });

  it('accepts `checkpoint`, with a `dlq` too (the dlq sink is checkpointed like the others)', () => {
    const r = parsePipeline(`${MIN}checkpoint: { interval: 10s, dir: state }\n`, 'p.yaml', options);
    assert.ok(r.config);
    assert.deepEqual(r.config.checkpoint, { interval: '10s', dir: 'state' });
    assert.deepEqual(lines(`${MIN}checkpoint: { interval: 10s, retain: 2, wal: { fsync: always } }\n`), []);
    assert.deepEqual(lines(`${MIN}dlq: { collect: { id: d } }\ncheckpoint: { interval: 10s }\n`), []);
  });

  it('accepts a PostgreSQL or Redis `checkpoint.store` (from the environment too) and names the schemes otherwise', () => {
    for (const url of ['postgres://u:p@h:5432/db', 'postgresql://h/db', 'redis://h:6379/2', 'rediss://h'])
      assert.deepEqual(
        lines(`${MIN}checkpoint: { interval: 10s, store: '${url}', namespace: orders }\n`),
        [],
      );
    const r = parsePipeline(`${MIN}checkpoint: { interval: 10s, store: '\${STORE}' }\n`, 'p.yaml', {
      ...options,
      env: { STORE: 'redis://127.0.0.1:6379' },
    });
    assert.equal(r.config?.checkpoint?.store, 'redis://127.0.0.1:6379');
    const bad = lines(`${MIN}checkpoint: { interval: 10s, store: 'mysql://u:secret@h/db' }\n`);
    assert.equal(bad.length, 1);
    assert.match(
      bad[0] as string,
      /checkpoint\.store: `mysql:\/\/…` is not a state store; use a URL starting with `postgres:\/\/`, `postgresql:\/\/`, `redis:\/\/` or `rediss:\/\/`/,
    );
    assert.doesNotMatch(bad[0] as string, /secret/);
    assert.equal(lines(`${MIN}checkpoint: { interval: 10s, store: 'state/dir' }\n`).length, 1);
  });
});

describe('parsePipeline: environment variables', () => {
  it('expands ${VAR} and ${VAR:-default}; a plain scalar is re-read (numbers stay numbers)', () => {
    const r = parsePipeline(
      'name: ${NAME:-dflt}\ninput:\n  memory:\n    batchSize: ${SIZE}\noutput:\n  collect:\n    id: "${ID}"\n',
      'p.yaml',
      { ...options, env: { SIZE: '5', ID: '42' } },
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.config?.name, 'dflt');
    assert.deepEqual(r.config?.input.config, { records: [], batchSize: 5 });
    assert.deepEqual(r.config?.output[0]?.config, { id: '42' }, 'a quoted value stays a string');
  });

  it('reports an unset variable with its name, line and how to give a default — and nothing else for that value', () => {
    assert.deepEqual(
      lines('input:\n  memory:\n    batchSize: ${SIZE}\noutput:\n  collect:\n    id: ${ID}\n'),
      [
        'p.yaml:3:16: error: input.memory.batchSize: environment variable `SIZE` is not set; set it or give a default: `${SIZE:-value}`',
        'p.yaml:6:9: error: output.collect.id: environment variable `ID` is not set; set it or give a default: `${ID:-value}`',
      ],
    );
  });

  it('explains that ${VAR} must be quoted inside a flow map', () => {
    const [p, ...rest] = problems(
      'input: { memory: { batchSize: ${SIZE} } }\noutput: { collect: { id: t } }\n',
    );
    assert.equal(rest.length, 0, 'the follow-on syntax errors are summarised, not listed');
    assert.equal(p?.line, 1);
    assert.match(p?.message ?? '', /^invalid YAML: .*must be quoted: `"\$\{VAR\}"`/);
  });
});

describe('parsePipeline: every problem at once, each with line and column', () => {
  const yaml = `name: demo
input:
  memroy: { records: [1] }
pipeline:
  - tag: { field: x, vale: 1, mode: sett, size: ten }
  - tag: { value: 1 }
  - nope: {}
  - tag: { field: a, value: 1 }
    nmae: x
  - collect: { id: x }
output:
  collect: { id: 3 }
dlq:
  memory: {}
maxErrorRate: 2
chanelCapacity: 3
`;
  const got = lines(yaml);

  it('reports each problem once, sorted by position', () => {
    assert.deepEqual(got, [
      'p.yaml:3:3: error: input.memroy: unknown source `memroy`; did you mean `memory`? Known sources: `memory` and `ticker`',
      'p.yaml:5:5: error: pipeline[0].tag.value: missing required field `value` (Value to set it to.)',
      'p.yaml:5:22: error: pipeline[0].tag.vale: unknown field `vale`; did you mean `value`? Known fields: `field`, `mode`, `size` and `value`.',
      'p.yaml:5:37: error: pipeline[0].tag.mode: string "sett" is not one of `set` or `keep`; did you mean `set`?',
      'p.yaml:5:49: error: pipeline[0].tag.size: expected a number, got string "ten"',
      'p.yaml:6:5: error: pipeline[1].tag.field: missing required field `field` (a string: Field to set.)',
      'p.yaml:7:5: error: pipeline[2].nope: unknown operator `nope`. Known operators: `reject`, `split` and `tag` (or `module: ./file.ts` for your own code)',
      'p.yaml:9:5: error: pipeline[3].nmae: unknown key `nmae` beside operator `tag`; did you mean `name`? Beside it only `name` or `buffer` may appear.',
      'p.yaml:10:5: error: pipeline[4].collect: `collect` is a sink, not an operator, so it cannot be used here. Known operators: `reject`, `split` and `tag`',
      'p.yaml:12:18: error: output.collect.id: expected a string, got number 3',
      'p.yaml:14:3: error: dlq.memory: `memory` is a source, not a sink, so it cannot be used here. Known sinks: `collect`',
      'p.yaml:15:15: error: maxErrorRate: too big: expected number to be <=1 (got number 2)',
      'p.yaml:16:1: error: chanelCapacity: unknown top-level key `chanelCapacity`; did you mean `channelCapacity`? Valid keys: `name`, `input`, `inputs`, `pipeline`, `output`, `outputs`, `dlq`, `checkpoint`, `maxErrorRate`, `channelCapacity`, `maxStateBytes`, `connections` and `http`.',
    ]);
  });

  it('gives no config when there is an error', () => {
    assert.equal(parsePipeline(yaml, 'p.yaml', options).config, undefined);
  });
});

describe('parsePipeline: bad shapes', () => {
  it('invalid YAML: the first syntax error with its line, not the cascade after it', () => {
    const ps = problems('input:\n  memory: {records: [1, 2]\noutput: x\n');
    assert.equal(ps.length, 1);
    assert.equal(ps[0]?.line, 3);
    assert.match(ps[0]?.message ?? '', /^invalid YAML: /);
  });

  it('duplicate keys', () => {
    assert.deepEqual(lines(`${MIN}name: a\nname: b\n`), [
      'p.yaml:4:1: error: invalid YAML: Map keys must be unique',
    ]);
  });

  it('an empty file, a list, missing input and output', () => {
    assert.match(lines('')[0] ?? '', /the pipeline file is empty/);
    assert.match(lines('- a\n')[0] ?? '', /a pipeline file is a map of top-level keys/);
    assert.deepEqual(
      problems('name: x\n').map((p) => [p.path, p.message.split(':')[0]]),
      [
        ['input', 'missing `input`'],
        ['output', 'missing `output`'],
      ],
    );
  });

  it('two components in one entry, none, a string instead of a map, an empty output list', () => {
    assert.deepEqual(
      lines(
        'input: memory\npipeline:\n  - tag: { field: a, value: 1 }\n    reject: { field: b }\n  - name: only-a-name\n  - 42\noutput: []\n',
      ),
      [
        'p.yaml:1:8: error: input: expected a source as a one-key map `{kind: config}`, e.g. `{ file: { path: out.jsonl, format: jsonl } }`; got string "memory" (write `memory: {}`). Known sources: `memory` and `ticker`',
        'p.yaml:3:5: error: pipeline[0]: one entry holds exactly one operator, found `tag` and `reject`; put each step in its own list item (`- …`)',
        'p.yaml:5:5: error: pipeline[1]: no operator in `pipeline[1]`; give one as `{kind: config}`. Known operators: `reject`, `split` and `tag`',
        'p.yaml:6:5: error: pipeline[2]: expected an operator as a one-key map `{kind: config}`, e.g. `- batch: { size: 100 }`; got number 42. Known operators: `reject`, `split` and `tag`',
        'p.yaml:7:9: error: output: the `output` list is empty; give at least one sink',
      ],
    );
  });

  it('bad buffers, duplicate stage names, bad side-output names', () => {
    assert.deepEqual(
      lines(
        'input: { memory: {}, name: a }\noutput:\n  - collect: { id: x }\n    name: a\n    buffer: { size: 0, overflow: drop }\noutputs:\n  out: { collect: { id: y } }\n',
      ),
      [
        'p.yaml:4:11: error: output[0].name: two stages are named `a` (also at `input`); stage names must be unique',
        'p.yaml:5:21: error: output[0].buffer.size: too small: expected number to be >=1 (got number 0)',
        'p.yaml:5:34: error: output[0].buffer.overflow: string "drop" is not one of `block`, `dropOldest` or `error`; did you mean `dropOldest`?',
        'p.yaml:7:3: error: outputs.out: `out` cannot name a side output; use letters, digits, `_` and `-` (and not `out` or `dlq`)',
      ],
    );
  });

  it('a module step that is not a path, or not found, or with extra keys', () => {
    assert.deepEqual(
      lines(
        `${MIN}pipeline:\n  - module: enrich.ts\n  - module: { path: ./nope.ts, exprt: x }\n  - module: ./nope.ts\n    tag: {}\n`,
      ),
      [
        'p.yaml:4:13: error: pipeline[0].module: `enrich.ts` is not a file path; write it relative to the pipeline file, e.g. `./enrich.ts`',
        'p.yaml:5:32: error: pipeline[1].module.exprt: unknown field `exprt`; did you mean `export`? Known fields: `export` and `path`.',
        'p.yaml:6:13: error: pipeline[2].module: module `./nope.ts` not found (looked for /nowhere/nope.ts)',
        'p.yaml:7:5: error: pipeline[2].tag: unknown key `tag` beside `module`; a module step takes `module` and optionally `name`, `buffer`, `parallelism` and `key`',
      ],
    );
  });
});

describe('parsePipeline: --set overrides', () => {
  it('sets nested values, list items and maps, read as YAML', () => {
    const r = parsePipeline(`${MIN}pipeline:\n  - tag: { field: a, value: 1 }\n`, 'p.yaml', {
      ...options,
      set: [
        'input.memory.batchSize=7',
        'pipeline[0].tag.value=hello',
        'output={collect: {id: z}}',
        'name=over',
      ],
    });
    assert.deepEqual(r.problems, []);
    assert.equal(r.config?.name, 'over');
    assert.deepEqual(r.config?.input.config, { records: [1], batchSize: 7 });
    assert.equal((r.config?.steps[0] as { config: { value: unknown } } | undefined)?.config.value, 'hello');
    assert.deepEqual(r.config?.output[0]?.config, { id: 'z' });
  });

  it('rejects a --set without `=`, and validates what it sets', () => {
    assert.deepEqual(lines(MIN, { set: ['nonsense', 'input.memory.batchSize=x'] }), [
      'p.yaml: error: --set `nonsense` is not `path=value` (e.g. `--set pipeline[0].batch.size=10`)',
      // At the argument, not at a line of the file (#15).
      'p.yaml (--set input.memory.batchSize): error: input.memory.batchSize: expected a number, got string "x"',
    ]);
  });
});

describe('parsePipeline: hostile input is a config problem, not a crash', () => {
  it('a YAML alias bomb is one problem naming the limit', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      MIN,
    ].join('\n');
    const found = lines(bomb);
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0] ?? '', /expands YAML aliases \(`\*name`\) more than 100 times/);
  });

  it('an alias bomb in a --set value is a problem too', () => {
    const found = lines(MIN, {
      set: ['name=[&a [x, x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]]'],
    });
    assert.ok(found.length >= 1, 'no problem');
  });

  it('a duration longer than 100 years is a problem at lint, with how to fix it', () => {
    const found = lines(`${MIN}checkpoint: { interval: 99999999999999999999d }\n`);
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0] ?? '', /`99999999999999999999d` is longer than 100 years/);
    assert.deepEqual(lines(`${MIN}checkpoint: { interval: 36500d }\n`), []);
  });
});
