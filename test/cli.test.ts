/**
 * The `sluice` command in-process, with the test components (src/config/test-registry.ts),
 * fake output streams and a fake signal source — so exit codes, messages, the status line and
 * Ctrl-C handling are checked without a terminal or real connectors.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { main } from '../src/cli/main.ts';
import type { CliIO } from '../src/cli/output.ts';
import { DRAIN_MESSAGE } from '../src/cli/run.ts';
import { defaultRegistry } from '../src/components.ts';
import { collected, testRegistry } from '../src/config/test-registry.ts';
import { Capture } from './support/capture.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function cli(argv: string[], over: Partial<CliIO> = {}) {
  const stdout = new Capture();
  const stderr = (over.stderr as Capture | undefined) ?? new Capture();
  const signals = (over.signals as EventEmitter | undefined) ?? new EventEmitter();
  const code = await main(argv, { stdout, stderr, env: {}, registry: testRegistry(), signals, ...over });
  return { code, stdout: stdout.text, stderr: stderr.text, signals };
}

const GOOD = 'name: good\ninput: { memory: { records: [1, 2, 3] } }\noutput: { collect: { id: cli-good } }\n';

describe('sluice run', () => {
  it('runs a file, prints the summary and exits 0', async () => {
    const r = await cli(['run', file('good.yaml', GOOD)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(collected.get('cli-good'), [1, 2, 3]);
    assert.match(r.stderr, /^Finished `good` in \S+: 3 read, 3 written, 0 to DLQ/m);
    assert.equal(r.stdout, '');
    assert.equal(
      r.signals.listenerCount('SIGINT') + r.signals.listenerCount('SIGTERM'),
      0,
      'listeners removed',
    );
  });

  it('fails (exit 1, `Failed`, why) a run whose records all went to the DLQ, by the default maxErrorRate', async () => {
    const r = await cli([
      'run',
      file(
        'all-dead.yaml',
        'name: dead\ninput: { memory: { records: [{ bad: 1 }, { bad: 2 }, { bad: 3 }] } }\npipeline: [{ reject: { field: bad } }]\noutput: { collect: { id: cli-dead } }\ndlq: { collect: { id: cli-dead-dlq } }\n',
      ),
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^Failed `dead` after \S+: 3 read, 0 written, 3 to DLQ/m);
    assert.match(r.stderr, /3 of 3 records read \(100%\) went to the DLQ, above maxErrorRate 50%/);
    assert.doesNotMatch(r.stderr, /Finished/);
  });

  it('passes a run within its maxErrorRate, and fails one above a stricter file setting', async () => {
    const records = '[{ ok: 1 }, { ok: 2 }, { ok: 3 }, { bad: 4 }]';
    const text = (rate: string) =>
      `name: some\n${rate}input: { memory: { records: ${records} } }\npipeline: [{ reject: { field: bad } }]\noutput: { collect: { id: cli-some } }\ndlq: { collect: { id: cli-some-dlq } }\n`;
    const within = await cli(['run', file('some.yaml', text(''))]);
    assert.equal(within.code, 0, within.stderr);
    assert.match(within.stderr, /^Finished `some`/m);
    const strict = await cli(['run', file('strict.yaml', text('maxErrorRate: 0.1\n'))]);
    assert.equal(strict.code, 1, strict.stderr);
    assert.match(strict.stderr, /1 of 4 records read \(25%\) went to the DLQ, above maxErrorRate 10%/);
  });

  it('a --set mistake is reported at the argument, not at a place in the file that does not hold it (#15)', async () => {
    const path = file('set-typo.yaml', GOOD);
    const typo = await cli(['lint', path, '--set', 'output.collect.idd=x', '--set', 'outptu.collect.id=y']);
    assert.equal(typo.code, 1);
    const text = typo.stdout + typo.stderr;
    assert.match(
      text,
      /set-typo\.yaml \(--set output\.collect\.idd\): error: output\.collect\.idd: unknown field `idd`; did you mean `id`\?/,
    );
    assert.match(
      text,
      /set-typo\.yaml \(--set outptu\.collect\.id\): error: outptu: unknown top-level key `outptu`; did you mean `output`\?/,
    );
    // A value given with --set is wrong at the argument too; the file's own mistakes keep their line.
    const value = await cli([
      'lint',
      file('set-value.yaml', `${GOOD}channelCapacity: 0\n`),
      '--set',
      'input.memory.records=7',
    ]);
    const both = value.stdout + value.stderr;
    assert.match(both, /set-value\.yaml \(--set input\.memory\.records\): error: input\.memory\.records: /);
    assert.match(both, /set-value\.yaml:4:\d+: error: channelCapacity: /);
  });

  it('applies --set overrides', async () => {
    const r = await cli([
      'run',
      file('set.yaml', GOOD),
      '--set',
      'output.collect.id=cli-set',
      '--set',
      'input.memory.records=[9]',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(collected.get('cli-set'), [9]);
  });

  it('prints the warnings of a valid file before running', async () => {
    const r = await cli([
      'run',
      // An unresolved YAML tag is only a warning.
      file('warn.yaml', `${GOOD.replace('name: good', 'name: !note good')}`),
    ]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /warn\.yaml:1:7: warning: invalid YAML: Unresolved tag: !note/);
  });

  it('exits 2 with every problem and no stack for an invalid file', async () => {
    const r = await cli(['run', file('bad.yaml', 'input: { memroy: {} }\noutput: { collect: {} }\n')]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `${dir}/bad.yaml:1:10: error: input.memroy: unknown source \`memroy\`; did you mean \`memory\`? Known sources: \`memory\` and \`ticker\`\n` +
        `${dir}/bad.yaml:2:11: error: output.collect.id: missing required field \`id\` (a string: Key in \`collected\`.)\n` +
        `2 problems in ${dir}/bad.yaml; nothing was run.\n`,
    );
  });

  it('exits 2 for a file that does not exist', async () => {
    const r = await cli(['run', join(dir, 'missing.yaml')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing\.yaml: error: cannot read the pipeline file: no such file/);
  });

  it('exits 1 for a failed run: message, code and context, no stack', async () => {
    const r = await cli([
      'run',
      file(
        'fail.yaml',
        'input: { memory: { records: [{ bad: 1 }] } }\npipeline:\n  - reject: { field: bad }\noutput: { collect: { id: x } }\n',
      ),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Failed `fail` after/m);
    assert.match(
      r.stderr,
      /^Error \[SLUICE_NO_DLQ\]: stage `reject` \(reject\): stage `reject` rejected a record: record has `bad`\. Configure a `dlq` output/m,
    );
    assert.match(r.stderr, /^ {2}stage: reject$/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user error');
  });

  it('prints the stack for an internal bug (a TypeError inside a stage)', async () => {
    file('buggy.ts', 'export const op = { process() { const o: any = undefined; return o.field; } };\n');
    const r = await cli([
      'run',
      file(
        'bug.yaml',
        'input: { memory: { records: [1] } }\npipeline:\n  - module: { path: ./buggy.ts, export: op }\noutput: { collect: { id: x } }\n',
      ),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error \[SLUICE_STAGE\]: stage `buggy` \(module\): .*undefined/);
    assert.match(r.stderr, /This looks like a bug; the stack:\nTypeError: .*\n\s+at /);
  });

  it('runs a TypeScript module whose default export is a Pipeline', async () => {
    const core = new URL('../src/pipeline.ts', import.meta.url).href;
    const batch = new URL('../src/core/message.ts', import.meta.url).href;
    const mod = file(
      'pipe.ts',
      `import { Pipeline } from '${core}';
import { batchOf } from '${batch}';
export const seen: unknown[] = [];
const p = new Pipeline('ts-module');
p.from({ async run(out) { await out.emit(batchOf([1, 2])); } }).to({ write(b) { seen.push(...b.records); } });
export default p;
`,
    );
    const r = await cli(['run', mod]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Finished `ts-module`.*2 read, 2 written/);
    assert.equal((await cli(['run', mod, '--set', 'a=1'])).code, 2, '--set does not apply to modules');
  });
});

describe('sluice run: status and signals', () => {
  const TICKER = 'name: tick\ninput: { ticker: {} }\noutput: { collect: { id: tick } }\n';

  it('draws a live status line on a TTY; the first SIGINT drains, says Stopped and the run exits 130', async () => {
    const stderr = new Capture(true);
    const signals = new EventEmitter();
    const running = cli(['run', file('tick.yaml', TICKER)], {
      stderr,
      signals,
      statusIntervalMs: { tty: 1, log: 1 },
    });
    while (!stderr.text.includes('read ·')) await sleep(2);
    assert.equal(signals.listenerCount('SIGINT'), 1);
    signals.emit('SIGINT');
    const r = await running;
    assert.equal(r.code, 130, stderr.text);
    assert.match(
      stderr.text,
      /\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \d[\d,]* read · \S+ · \d[\d,]* written · 0 DLQ · backpressure \S+.* · 0:0\d/,
    );
    assert.ok(stderr.text.includes('\x1b[K'), 'each redraw clears the rest of the line');
    assert.ok(
      stderr.text.includes(`\r\x1b[K${DRAIN_MESSAGE}\n`),
      'the status line is cleared before the message',
    );
    assert.doesNotMatch(stderr.text, /Finished/);
    const summary = /Stopped `tick` after \S+: (\S+) read, (\S+) written/.exec(stderr.text);
    assert.ok(summary, stderr.text);
    assert.equal(summary[1], summary[2], 'a drain writes everything read');
    assert.equal(Number(summary[2]?.replace(/,/g, '')), (collected.get('tick') ?? []).length);
    assert.equal(signals.listenerCount('SIGINT') + signals.listenerCount('SIGTERM'), 0);
  });

  it('a second signal stops at once and exits 130', async () => {
    const stderr = new Capture(false);
    const signals = new EventEmitter();
    const running = cli(['run', file('tick2.yaml', TICKER)], {
      stderr,
      signals,
      statusIntervalMs: { tty: 1, log: 1 },
    });
    while (!stderr.text.includes('Progress of `tick`')) await sleep(2);
    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    const r = await running;
    assert.equal(r.code, 130, stderr.text);
    assert.match(stderr.text, /Stopping now: in-flight records are dropped/);
    assert.match(stderr.text, /^Progress of `tick`: \d[\d,]* read, /m, 'off a TTY: plain log lines');
    assert.doesNotMatch(stderr.text, /\r/);
    assert.equal(signals.listenerCount('SIGINT') + signals.listenerCount('SIGTERM'), 0);
  });
});

describe('sluice lint', () => {
  it('prints `ok` (with warnings) and exits 0 for a good file', async () => {
    const path = file('lint-ok.yaml', `${GOOD.replace('name: good', 'name: !note good')}`);
    const r = await cli(['lint', path]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /lint-ok\.yaml:1:7: warning: invalid YAML: Unresolved tag: !note/);
    assert.ok(r.stdout.endsWith(`${path}: ok (1 warning)\n`));
  });

  it('prints every problem, including what only building finds, and exits 1', async () => {
    const path = file(
      'lint-bad.yaml',
      'input: { memory: {} }\npipeline:\n  - split: { field: k, routes: { hi: 1 } }\noutput: { collect: { id: x } }\n',
    );
    const r = await cli(['lint', path]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /lint-bad\.yaml:3:5: error: pipeline\[0\]: step `split` emits on side output `hi`, but `outputs:` has no `hi`/,
    );
    assert.ok(r.stdout.endsWith(`${path}: 1 problem\n`));
  });

  it('lints a TypeScript pipeline module by validating its graph', async () => {
    const core = new URL('../src/pipeline.ts', import.meta.url).href;
    const bad = file(
      'lint-mod.ts',
      `import { Pipeline } from '${core}';\nexport default new Pipeline('empty');\n`,
    );
    const r = await cli(['lint', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /the pipeline has no source/);
  });
});

describe('sluice schema, list and usage', () => {
  it('schema: JSON Schema with a oneOf of one-key objects per component kind', async () => {
    const r = await cli(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as {
      $defs: Record<string, { oneOf?: { required: string[]; description: string }[] }>;
    };
    assert.deepEqual(
      schema.$defs.source?.oneOf?.map((o) => o.required),
      [['memory'], ['ticker']],
    );
    assert.equal(schema.$defs.source?.oneOf?.[0]?.description, 'Emits the records given in its config.');
    assert.deepEqual(
      schema.$defs.sink?.oneOf?.map((o) => o.required),
      [['collect']],
    );
    const tag = (schema.$defs as Record<string, unknown>)['operator.tag'] as {
      properties: Record<string, { description?: string; default?: unknown }>;
    };
    assert.equal(tag.properties.size?.default, 10);
    assert.equal(tag.properties.field?.description, 'Field to set.');
  });

  it('list: every component, one kind, one component in full', async () => {
    const all = await cli(['list']);
    assert.equal(all.code, 0);
    assert.match(
      all.stdout,
      /^Sources \(input:\)\n {2}memory +stable +Emits the records given in its config\.$/m,
    );
    assert.match(all.stdout, /^ {2}module +stable +Your own code/m);
    const sinks = await cli(['list', 'sinks']);
    assert.match(sinks.stdout, /^Sinks/);
    assert.doesNotMatch(sinks.stdout, /^ {2}memory/m);
    const one = await cli(['list', 'tag']);
    assert.equal(one.code, 0);
    assert.match(
      one.stdout,
      /^tag \(operator, beta\)\n {2}Sets a field on every record\.\n\nFields:\n {2}field \(string, required\)\n {6}Field to set\./,
    );
    assert.match(one.stdout, /mode \("set" \| "keep", default "set"\)/);
    const ex = await cli(['list', 'memory']);
    assert.match(ex.stdout, /Example: Two records\n {2}memory:\n {4}records: \[\{ a: 1 \}, \{ a: 2 \}\]/);
  });

  it('list module: the step `sluice list` shows is described too (#15), and a typo of it is guessed', async () => {
    const r = await cli(['list', 'module']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^module \(step, stable\)\n {2}Runs your own code\. `module: \.\/enrich\.ts`/);
    const typo = await cli(['list', 'modul']);
    assert.match(typo.stderr, /did you mean `module`\?/);
  });

  it('list: the built-in sinks describe what they write, and plain integers show no safe-integer bound (#15)', async () => {
    const io = { registry: defaultRegistry };
    const file = await cli(['list', 'file'], io);
    const [source, sink] = file.stdout.split(/^(?=file \(sink)/m);
    assert.match(source ?? '', /blank lines skipped/);
    assert.doesNotMatch(sink ?? '', /blank lines skipped|one object per row keyed by the header/);
    assert.match(sink ?? '', /a header row first unless `header: false`/);
    const generate = await cli(['list', 'generate'], io);
    assert.match(generate.stdout, /^ {2}seed \(integer, default 1\)$/m);
    assert.doesNotMatch(`${generate.stdout}${sink}`, /9007199254740991/);
  });

  it('list: an unknown name exits 2 with a suggestion', async () => {
    const r = await cli(['list', 'colect']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown component or kind `colect`; did you mean `collect`\?/);
  });

  it('usage: no arguments shows help (0); --help 0; an unknown command or missing argument 2', async () => {
    const none = await cli([]);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /Usage: sluice/);
    assert.equal((await cli(['--help'])).code, 0);
    const unknown = await cli(['rnu']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'rnu'/);
    assert.match(unknown.stderr, /Did you mean run\?/);
    assert.equal((await cli(['run'])).code, 2);
  });
});

describe('built-in components, loaded per pipeline file', () => {
  it('run loads what the file names and reports a misspelt component with every built-in name as hints', async () => {
    const out = join(dir, 'lazy-out.jsonl');
    const ok = file(
      'lazy.yaml',
      `name: lazy\ninput: { generate: { count: 5, seed: 1 } }\noutput: { file: { path: ${JSON.stringify(out)}, format: jsonl } }\n`,
    );
    const r = await cli(['run', ok], { registry: undefined });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /5 read, 5 written/);

    const bad = file('lazy-bad.yaml', 'name: bad\ninput: { kafak: { topic: t } }\noutput: { stdout: {} }\n');
    const run = await cli(['run', bad], { registry: undefined });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown source `kafak`; did you mean `kafka`\?/);
    const lint = await cli(['lint', bad], { registry: undefined });
    assert.equal(lint.code, 1);
    assert.match(lint.stdout, /unknown source `kafak`; did you mean `kafka`\?/);
  });
});
