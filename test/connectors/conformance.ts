/**
 * The conformance suite every source and sink connector passes, through pipeline files and the
 * real CLI (`node src/cli/main.ts run FILE`), never through a connector's internals:
 *
 * - open and close with nothing to do;
 * - read exactly N records (source) / send a batch of N and read exactly N back (sink);
 * - end of input: the run ends on its own; a second run reads only what came after when the
 *   source remembers its position upstream (a consumer group), else everything again;
 * - checkpoint capture: a run with `checkpoint:` is stopped (SIGTERM, a draining stop) mid-stream,
 *   and the next run resumes from its positions;
 * - restart after SIGKILL of the `sluice run` child mid-stream: the next run completes;
 * - bad input (source) or a record the sink rejects goes to the `dlq` output with its position
 *   while the rest flows.
 *
 * After a stop or a kill nothing is lost; a record appears twice only where the connector's
 * README promises at-least-once ({@link SourceTarget.delivery}, {@link SinkTarget.delivery}).
 * A source is tested into the `file` sink (exactly-once under checkpoints), a sink from the `file`
 * source (exactly-once positions), so what a test sees is the target's own promise.
 *
 * Call {@link connectorConformance} inside a test file; it declares one `describe` block per role.
 * (Benthos `public/service/integration/stream_test_definitions.go` is the outside model.)
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';

/** The records every test writes: `payload` is `p<id>`, so a read-back shows both fields intact. */
export interface TestRecord {
  readonly id: number;
  readonly payload: string;
}

/** An input item: a record, or bytes the source cannot decode (`bad` holds a unique marker). */
export type InputItem = TestRecord | { readonly bad: string };

/** What the suite needs from a source connector. */
export interface SourceTarget {
  /** Makes a fresh, empty input (topic, table, stream, file) for one test; returns its name. */
  create(dir: string): Promise<string>;
  /**
   * The `input:` component for `place` (`{ kafka: { … } }`). Called once per run: two runs of a
   * test get the same fragment (same consumer group…), so the second resumes the first.
   */
  input(place: string, dir: string): Record<string, unknown>;
  /** Appends `items` to `place`, in order. */
  write(place: string, items: readonly InputItem[], dir: string): Promise<void>;
  /**
   * What a restart from a checkpoint (after a stop or a SIGKILL) promises, as the connector's
   * README says: `exactly-once` (positions are exact) or `at-least-once` (duplicates allowed).
   */
  readonly delivery: 'exactly-once' | 'at-least-once';
  /** How a run ends: `at-end` of the input, or `when-idle` (its `idleTimeout` passed with nothing new). */
  readonly ends: 'at-end' | 'when-idle';
  /**
   * True when a clean run without checkpoints commits its position upstream (a consumer group), so
   * the next run reads only what came after; false when every run starts at the beginning.
   */
  readonly remembers: boolean;
  /**
   * Where the input can hold undecodable items ({@link InputItem} `bad`): the part of the
   * position the dead letter of the `index`-th written item carries. Absent: the source decodes
   * everything (a table row), and the dlq test is skipped with `noBadInput` as the reason.
   */
  readonly badInput?: { position(place: string, index: number, dir: string): Record<string, unknown> };
  /** Why the source has no bad input (shown as the skip reason). */
  readonly noBadInput?: string;
  /** Tests that fail because of a known connector bug: run as `todo`, with the bug as the reason. */
  readonly knownIssues?: KnownIssues;
}

/** A known bug per test (`stop`, `kill`, `dlq`…): the test still runs, as `todo`, and reports it. */
export type KnownIssues = Readonly<
  Partial<Record<'empty' | 'read' | 'end' | 'stop' | 'kill' | 'dlq', string>>
>;

/** What the suite needs from a sink connector. */
export interface SinkTarget {
  /** Makes a fresh, empty output (topic, table, stream, folder) for one test; returns its name. */
  create(dir: string): Promise<string>;
  /** The `output:` component writing to `place`; `checkpointing` tells whether the run has `checkpoint:`. */
  output(place: string, opts: { dir: string; checkpointing: boolean }): Record<string, unknown>;
  /** Every record `place` holds that a reader can see now (committed), in the order it keeps. */
  read(place: string, dir: string): Promise<unknown[]>;
  /**
   * How many records a run in progress has written so far, to stop it mid-stream; default: the
   * length of {@link read} (a sink whose output appears only at the end counts its work in progress).
   */
  progress?(place: string, dir: string): Promise<number>;
  /** What a restart from a checkpoint promises for this sink fed by the `file` source (its README). */
  readonly delivery: 'exactly-once' | 'at-least-once';
  /** A record the sink rejects to the `dlq` output while the others are written; absent: `acceptsAll` says why. */
  readonly rejects?: unknown;
  /** Why every record is accepted (shown as the skip reason of the dlq test). */
  readonly acceptsAll?: string;
  /** Tests that fail because of a known connector bug: run as `todo`, with the bug as the reason. */
  readonly knownIssues?: KnownIssues;
}

/** One connector under test. */
export interface ConnectorTarget {
  readonly name: string;
  readonly source?: SourceTarget | undefined;
  readonly sink?: SinkTarget | undefined;
  /** Removes what the tests made (topics, tables, streams) once every test ran. */
  cleanup?(): Promise<void>;
}

const PROJECT = new URL('../../', import.meta.url).pathname;
const CLI = join(PROJECT, 'src/cli/main.ts');
/** Records per test: enough for several checkpoints and a kill mid-stream, few enough to stay quick. */
const N = 1500;
/** Records between count-based checkpoints. */
const EVERY = 100;
/** Throttle of the restart tests (records/s, no burst): keeps a run mid-stream long enough to be stopped. */
const RATE = 1000;

/** `count` records from `from`. */
export function records(count: number, from = 0): TestRecord[] {
  return Array.from({ length: count }, (_, i) => ({ id: from + i, payload: `p${from + i}` }));
}

/** A record read back, reduced to the fields the suite wrote (ids come back as text from some sinks). */
function normalise(r: unknown): TestRecord {
  const o = r as { id?: unknown; payload?: unknown };
  return { id: Number(o.id), payload: String(o.payload) };
}

/** Asserts `got` holds each of `want` once (exactly-once) or at least once (at-least-once), nothing else. */
export function assertDelivered(
  got: readonly unknown[],
  want: readonly TestRecord[],
  delivery: 'exactly-once' | 'at-least-once',
  what: string,
): void {
  const have = got.map(normalise);
  const wantIds = new Set(want.map((r) => r.id));
  const seen = new Map<number, number>();
  for (const r of have) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  const missing = want.filter((r) => !seen.has(r.id)).map((r) => r.id);
  const extra = have.filter((r) => !wantIds.has(r.id)).map((r) => r.id);
  const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(
    { missing: missing.slice(0, 10), extra: extra.slice(0, 10) },
    { missing: [], extra: [] },
    `${what}: ${missing.length} missing, ${extra.length} unexpected`,
  );
  if (delivery === 'exactly-once')
    assert.deepEqual(twice.slice(0, 10), [], `${what}: ${twice.length} records twice (exactly-once)`);
  const bad = have.filter((r) => r.payload !== `p${r.id}`);
  assert.deepEqual(bad.slice(0, 5), [], `${what}: records came back changed`);
}

/** A `sluice run` child process and what it printed. */
export interface Run {
  readonly child: ChildProcess;
  /** Resolves when it exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts `sluice run pipeline.yaml` in `dir` through the CLI. */
export function startRun(dir: string): Run {
  const child = spawn(process.execPath, [CLI, 'run', 'pipeline.yaml'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

/** Runs the pipeline in `dir` to its end; asserts it exits 0. */
export async function runToEnd(dir: string, what: string): Promise<string> {
  const run = startRun(dir);
  const end = await run.exited;
  assert.equal(
    end.code,
    0,
    `${what}: \`sluice run\` exited with ${end.code ?? end.signal}:\n${run.stderr()}`,
  );
  return run.stderr();
}

/** Polls `check` until it is true; fails naming `what` after `ms`, or when `run` ended first. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  opts: { run?: Run; ms?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.ms ?? 60_000);
  let ended = false;
  void opts.run?.exited.then(() => {
    ended = true;
  });
  for (;;) {
    if (await check()) return;
    if (ended)
      assert.fail(
        `the run ended before ${what} (raise the record count or lower the throttle):\n${opts.run?.stderr()}`,
      );
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${opts.run?.stderr() ?? ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Writes `pipeline.yaml` into `dir`. */
function writePipeline(
  dir: string,
  doc: {
    name: string;
    input: Record<string, unknown>;
    output: Record<string, unknown>;
    throttle?: boolean;
    checkpoint?: boolean;
  },
): void {
  const pipeline: Record<string, unknown> = { name: doc.name, input: doc.input };
  if (doc.throttle === true) pipeline.pipeline = [{ throttle: { rate: RATE, burst: 50 } }];
  pipeline.output = doc.output;
  pipeline.dlq = { file: { path: 'dead.jsonl', format: 'jsonl' } };
  if (doc.checkpoint === true) pipeline.checkpoint = { interval: '1h', records: EVERY };
  writeFileSync(join(dir, 'pipeline.yaml'), stringify(pipeline));
}

/** Lines of a JSON Lines file, parsed (complete lines only); none when it does not exist. */
export function jsonLines(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  lines.pop(); // the part after the last newline: empty, or a line being written
  return lines.filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);
}

/**
 * What the `file` sink wrote to `path` so far: the final file once it exists, else the running
 * run's temporary file next to it (`.<name>.sluice-tmp-<pid>`).
 */
export function fileOutput(path: string): unknown[] {
  if (existsSync(path)) return jsonLines(path);
  const dir = join(path, '..');
  const name = path.slice(dir.length + 1);
  const temp = readdirSync(dir).find((f) => f.startsWith(`.${name}.sluice-tmp-`));
  return temp === undefined ? [] : jsonLines(join(dir, temp));
}

interface DeadLetterLine {
  readonly stage?: string;
  readonly record?: unknown;
  readonly position?: Record<string, unknown>;
  readonly error?: { readonly code?: string; readonly message?: string };
}

/** A fresh pipeline name: names checkpoints, consumer groups and transactions, so no two tests share one. */
const pipelineName = (target: string, test: string) => `conf-${target}-${test}-${randomUUID().slice(0, 8)}`;

/** Declares the conformance tests of `target`. */
export function connectorConformance(target: ConnectorTarget): void {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), `sluice-conformance-${target.name}-`));
    dirs.push(d);
    return d;
  };
  after(async () => {
    await target.cleanup?.();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  if (target.source !== undefined) sourceTests(target.name, target.source, tmp);
  if (target.sink !== undefined) sinkTests(target.name, target.sink, tmp);
}

/** Test options for test `key` of `target`: `todo` naming the bug when it has a known one. */
function known(target: { readonly knownIssues?: KnownIssues }, key: keyof KnownIssues): { todo?: string } {
  const issue = target.knownIssues?.[key];
  return issue === undefined ? {} : { todo: `known bug: ${issue}` };
}

/** The `file` sink the source tests write into: exactly-once under checkpoints. */
const OUT = { file: { path: 'out.jsonl', format: 'jsonl' } };

function sourceTests(name: string, source: SourceTarget, tmp: () => string): void {
  describe(`source conformance: ${name}`, () => {
    /** A fresh input and folder with `pipeline.yaml` reading it into `out.jsonl`. */
    const setUp = async (test: string, opts: { throttle?: boolean; checkpoint?: boolean } = {}) => {
      const dir = tmp();
      const place = await source.create(dir);
      writePipeline(dir, {
        name: pipelineName(name, test),
        input: source.input(place, dir),
        output: OUT,
        ...opts,
      });
      return { dir, place, out: join(dir, 'out.jsonl') };
    };

    it('opens and closes with nothing to read', known(source, 'empty'), async () => {
      const { dir, out } = await setUp('empty');
      await runToEnd(dir, 'an empty input');
      assert.ok(existsSync(out), 'the output was committed');
      assert.deepEqual(jsonLines(out), []);
      assert.deepEqual(jsonLines(join(dir, 'dead.jsonl')), []);
    });

    it(`reads exactly ${N} records, each once and intact`, known(source, 'read'), async () => {
      const { dir, place, out } = await setUp('read');
      const want = records(N);
      await source.write(place, want, dir);
      const stderr = await runToEnd(dir, 'reading');
      assertDelivered(jsonLines(out), want, 'exactly-once', 'the output');
      assert.match(stderr, new RegExp(`\\b${N.toLocaleString('en-US')} read\\b`), 'the summary counts them');
    });

    it(
      source.remembers
        ? 'end of input: the run ends on its own; the next run reads only what came after'
        : 'end of input: the run ends on its own; the next run reads everything again',
      known(source, 'end'),
      async () => {
        const { dir, place, out } = await setUp('end');
        await source.write(place, records(100), dir);
        await runToEnd(dir, `the first run (ends ${source.ends})`);
        assertDelivered(jsonLines(out), records(100), 'exactly-once', 'the first run');
        await source.write(place, records(50, 100), dir);
        await runToEnd(dir, 'the second run');
        assertDelivered(
          jsonLines(out),
          source.remembers ? records(50, 100) : records(150),
          'exactly-once',
          'the second run',
        );
      },
    );

    it(
      `checkpoint capture: stopped mid-stream, the next run resumes from its checkpoint (${source.delivery})`,
      known(source, 'stop'),
      async () => {
        const { dir, place, out } = await setUp('stop', { throttle: true, checkpoint: true });
        const want = records(N);
        await source.write(place, want, dir);
        const first = startRun(dir);
        await until('a third of the output', () => fileOutput(out).length >= N / 3, { run: first });
        first.child.kill('SIGTERM');
        const end = await first.exited;
        assert.equal(
          end.code,
          143,
          `a draining stop says Stopped and exits 143 (128 + SIGTERM):\n${first.stderr()}`,
        );
        const partial = jsonLines(out).length;
        assert.ok(partial < N, `stopped mid-stream (${partial} of ${N} written)`);
        await runToEnd(dir, 'the run after the stop');
        assertDelivered(jsonLines(out), want, source.delivery, 'after a stop and a restart');
      },
    );

    it(
      `SIGKILL mid-stream, then a restart: nothing lost${source.delivery === 'exactly-once' ? ', nothing twice' : ''}`,
      known(source, 'kill'),
      async () => {
        const { dir, place, out } = await setUp('kill', { throttle: true, checkpoint: true });
        const want = records(N);
        await source.write(place, want, dir);
        const first = startRun(dir);
        await until('a third of the output', () => fileOutput(out).length >= N / 3, { run: first });
        first.child.kill('SIGKILL');
        assert.equal((await first.exited).signal, 'SIGKILL');
        assert.ok(!existsSync(out), 'killed before the end');
        await runToEnd(dir, 'the run after the kill');
        assertDelivered(jsonLines(out), want, source.delivery, 'after a SIGKILL and a restart');
      },
    );

    const bad = source.badInput;
    it(
      'bad input goes to the dlq with its position while the rest flows',
      bad === undefined ? { skip: source.noBadInput ?? 'no undecodable input' } : known(source, 'dlq'),
      async () => {
        if (bad === undefined) return;
        const { dir, place, out } = await setUp('dlq');
        const good = records(200);
        const badAt = [0, 57, 201];
        const items: InputItem[] = [...good];
        for (const i of badAt) items.splice(i, 0, { bad: `oops${i}` });
        await source.write(place, items, dir);
        await runToEnd(dir, 'a run over bad input');
        assertDelivered(jsonLines(out), good, 'exactly-once', 'the good records');
        const dead = jsonLines(join(dir, 'dead.jsonl')) as DeadLetterLine[];
        assert.equal(dead.length, badAt.length, `one dead letter per bad item: ${JSON.stringify(dead)}`);
        for (const i of badAt) {
          const letter = dead.find((d) => JSON.stringify(d.record).includes(`oops${i}`));
          assert.ok(letter, `a dead letter holds bad item ${i}: ${JSON.stringify(dead)}`);
          assert.equal(letter.stage, 'input');
          assert.ok(letter.error?.message, 'it says what was wrong');
          assert.deepEqual(
            { ...letter.position, ...bad.position(place, i, dir) },
            letter.position,
            `bad item ${i}: its position`,
          );
        }
      },
    );
  });
}

/**
 * `r` with a `pad` field of 400 bytes when it is an object: the `file` source stops between 64 KiB
 * chunks, so a draining stop of a short file would finish all of it. Sinks write it or drop it;
 * the suite compares `id` and `payload` only.
 */
export function padded(r: unknown): unknown {
  return typeof r === 'object' && r !== null && !Array.isArray(r) ? { ...r, pad: PAD } : r;
}
const PAD = 'x'.repeat(400);

/** The input the sink tests read: the `file` source, whose positions are exact. */
const IN = { file: { path: 'in.jsonl', format: 'jsonl', batchSize: 50 } };

function sinkTests(name: string, sink: SinkTarget, tmp: () => string): void {
  describe(`sink conformance: ${name}`, () => {
    /** A fresh output and folder with `in.jsonl` holding `items` and `pipeline.yaml` writing it to the sink. */
    const setUp = async (
      test: string,
      items: readonly unknown[],
      opts: { throttle?: boolean; checkpoint?: boolean } = {},
    ) => {
      const dir = tmp();
      const place = await sink.create(dir);
      writeFileSync(join(dir, 'in.jsonl'), items.map((r) => `${JSON.stringify(padded(r))}\n`).join(''));
      const output = sink.output(place, { dir, checkpointing: opts.checkpoint === true });
      writePipeline(dir, { name: pipelineName(name, test), input: IN, output, ...opts });
      return { dir, place };
    };

    it('opens and closes with nothing to write', known(sink, 'empty'), async () => {
      const { dir, place } = await setUp('empty', []);
      await runToEnd(dir, 'an empty input');
      assert.deepEqual(await sink.read(place, dir), []);
      assert.deepEqual(jsonLines(join(dir, 'dead.jsonl')), []);
    });

    it(`sends a batch of ${N} and reads exactly ${N} back`, known(sink, 'read'), async () => {
      const want = records(N);
      const { dir, place } = await setUp('batch', want);
      await runToEnd(dir, 'writing');
      assertDelivered(await sink.read(place, dir), want, 'exactly-once', 'the output');
    });

    /** Runs until a third is visible, ends the run with `signal`, checks it was mid-stream, runs again. */
    const interrupted = async (test: string, signal: 'SIGTERM' | 'SIGKILL') => {
      const want = records(N);
      const { dir, place } = await setUp(test, want, { throttle: true, checkpoint: true });
      const first = startRun(dir);
      const progress = async () =>
        sink.progress !== undefined ? sink.progress(place, dir) : (await sink.read(place, dir)).length;
      await until('a third of the output', async () => (await progress()) >= N / 3, { run: first });
      first.child.kill(signal);
      const end = await first.exited;
      if (signal === 'SIGTERM')
        assert.equal(
          end.code,
          143,
          `a draining stop says Stopped and exits 143 (128 + SIGTERM):\n${first.stderr()}`,
        );
      else assert.equal(end.signal, 'SIGKILL');
      const partial = (await sink.read(place, dir)).length;
      assert.ok(partial < N, `ended mid-stream (${partial} of ${N} written)`);
      await runToEnd(dir, `the run after the ${signal}`);
      assertDelivered(await sink.read(place, dir), want, sink.delivery, `after a ${signal} and a restart`);
    };

    it(
      `checkpoint capture: stopped mid-stream, the next run resumes from its checkpoint (${sink.delivery})`,
      known(sink, 'stop'),
      () => interrupted('stop', 'SIGTERM'),
    );

    it(
      `SIGKILL mid-stream, then a restart: nothing lost${sink.delivery === 'exactly-once' ? ', nothing twice' : ''}`,
      known(sink, 'kill'),
      () => interrupted('kill', 'SIGKILL'),
    );

    it(
      'a record the sink rejects goes to the dlq with its position while the rest flows',
      sink.rejects === undefined ? { skip: sink.acceptsAll ?? 'accepts every record' } : known(sink, 'dlq'),
      async () => {
        const good = records(300);
        const badAt = [3, 150];
        const items: unknown[] = [...good];
        for (const i of badAt) items.splice(i, 0, sink.rejects);
        const { dir, place } = await setUp('dlq', items);
        await runToEnd(dir, 'a run with rejected records');
        assertDelivered(await sink.read(place, dir), good, 'exactly-once', 'the accepted records');
        const dead = jsonLines(join(dir, 'dead.jsonl')) as DeadLetterLine[];
        assert.equal(
          dead.length,
          badAt.length,
          `one dead letter per rejected record: ${JSON.stringify(dead)}`,
        );
        assert.deepEqual(
          dead.map((d) => d.position?.line).sort((a, b) => Number(a) - Number(b)),
          badAt.map((i) => i + 1),
          'each carries its input position (line)',
        );
        for (const d of dead) {
          assert.equal(d.stage, 'output');
          assert.ok(d.error?.message, 'it says what was wrong');
        }
      },
    );
  });
}
