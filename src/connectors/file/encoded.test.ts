/**
 * A CSV file source fused with a JSON Lines sink (`core/encoded.ts`): the run writes the same
 * bytes, dead letters (text, error, position) and counts as the general path — oracle: the same
 * pipeline with a pass-through step between, which the planner never fuses — for plain and
 * gzip input, the file and stdout sinks, under checkpoints with a crash and a restart (output and
 * dead letters exactly once), and with `strict`. And the planner fuses only what it may.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CheckpointCoordinator } from '../../checkpoint/coordinator.ts';
import { CheckpointStore } from '../../checkpoint/store.ts';
import { ManualClock } from '../../core/clock.ts';
import { encodedBytes, fuseEncodedOutput } from '../../core/encoded.ts';
import type { Batch } from '../../core/message.ts';
import type { DeadLetter, Logger, Operator, Sink, Source } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { specFactory } from '../../spec/factory.ts';
import { memoryBackend } from '../../state/backend.ts';
import { stdoutSink } from '../stdio/sink.ts';
import { stdinSource } from '../stdio/source.ts';
import { stdinSourceSpec, stdoutSinkSpec } from '../stdio/spec.ts';
import { fileSink } from './sink.ts';
import { fileSource } from './source.ts';
import { fileSinkSpec, fileSourceSpec } from './spec.ts';
import { collect } from './test-helpers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-encoded-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };
const passThrough: Operator = { process: (b, out) => out.emit(b) };

/** Rows with quotes, CRLF, non-ASCII, escapes, and bad rows of every kind between them. */
function csvBytes(rows = 300): Buffer {
  const parts: Buffer[] = [Buffer.from('\ufeffid,"na""me",city,note\r\n')];
  for (let i = 0; i < rows; i++) {
    if (i % 37 === 5) parts.push(Buffer.from(`${i},too,many,fields,here\n`));
    else if (i % 41 === 7) parts.push(Buffer.from(`${i},"x"y,z,w\n`));
    else if (i % 43 === 9) parts.push(Buffer.from(`${i},a,`), Buffer.from([0xff, 0xfe]), Buffer.from(',b\n'));
    else if (i % 10 === 0) parts.push(Buffer.from('\r\n'));
    else
      parts.push(
        Buffer.from(
          `${i},"n ""${i}"", a\\b\ttab",${i % 3 === 0 ? 'São Paulo' : 'Zürich'},"multi\nline ${i}"\r\n`,
        ),
      );
  }
  parts.push(Buffer.from('last,row,without,newline'));
  return Buffer.concat(parts);
}

/** A sink wrapper that notes whether each batch came pre-encoded and can fail its `n`th write. */
function watched(sink: Sink, failAt?: number): Sink & { encoded: boolean[] } {
  const encoded: boolean[] = [];
  return {
    ...sink,
    encoded,
    write(b: Batch<unknown>) {
      encoded.push(b.encoded !== undefined);
      if (failAt !== undefined && encoded.length === failAt) throw new Error('crash');
      return sink.write(b);
    },
  };
}

/** Dead letters without what differs between two runs for no fault of theirs (the stage name). */
function letters(dead: readonly DeadLetter[]): unknown[] {
  return dead.map((l) => [l.error.code, l.error.message, l.position, l.record, l.source]);
}

async function fileRun(input: string, output: string, fused: boolean, options: { batchSize?: number } = {}) {
  const sink = watched(fileSink({ path: output, format: 'jsonl' }));
  const dead = collect<DeadLetter>();
  const p = new Pipeline('t');
  const src = p.from(fileSource({ path: input, format: 'csv', ...options }), { name: 'input' });
  (fused ? src : src.via(passThrough, { name: 'pass' })).to(sink, { name: 'out' });
  p.dlq(dead);
  const summary = await p.run({ log: quiet }).done;
  const stage = (n: string) => summary.stages.find((s) => s.name === n);
  return {
    out: await readFile(output),
    dead: letters(dead.records()),
    encoded: sink.encoded,
    read: summary.recordsRead,
    written: summary.recordsWritten,
    sinkIn: stage('out')?.recordsIn,
    progress: summary.progress,
  };
}

describe('a CSV file source fused with a JSON Lines sink', () => {
  for (const gz of [false, true]) {
    it(`writes what the general path writes, with the same dead letters and counts (${gz ? 'gzip' : 'plain'} input)`, async () => {
      const input = join(dir, gz ? 'in.csv.gz' : 'in.csv');
      await writeFile(input, gz ? gzipSync(csvBytes()) : csvBytes());
      for (const batchSize of [7, 1024]) {
        const fused = await fileRun(input, join(dir, 'fused.jsonl'), true, { batchSize });
        const general = await fileRun(input, join(dir, 'general.jsonl'), false, { batchSize });
        assert.ok(fused.encoded.length > 0 && fused.encoded.every(Boolean), 'every batch pre-encoded');
        assert.ok(
          general.encoded.every((e) => !e),
          'no batch pre-encoded through a step',
        );
        assert.equal(fused.out.toString(), general.out.toString());
        assert.deepEqual(fused.dead, general.dead);
        assert.ok(fused.dead.length >= 15, `${fused.dead.length} dead letters`);
        assert.equal(fused.read, general.read);
        assert.equal(fused.written, general.written);
        assert.equal(fused.sinkIn, general.sinkIn);
        assert.equal(fused.out.toString().split('\n').length - 1, fused.written);
        assert.deepEqual(fused.progress, general.progress);
      }
    });
  }

  it('writes the same to a stdout sink, and a compressed output file the same once decompressed', async () => {
    const input = join(dir, 'std.csv');
    await writeFile(input, csvBytes(120));
    const toStream = async (fused: boolean) => {
      const stream = new PassThrough();
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const sink = watched(stdoutSink({ format: 'jsonl', stream }));
      const p = new Pipeline('t');
      const src = p.from(fileSource({ path: input, format: 'csv', batchSize: 5 }), { name: 'input' });
      (fused ? src : src.via(passThrough)).to(sink);
      p.dlq(collect());
      await p.run({ log: quiet }).done;
      return { out: Buffer.concat(chunks).toString(), encoded: sink.encoded };
    };
    const fused = await toStream(true);
    assert.ok(fused.encoded.every(Boolean));
    assert.equal(fused.out, (await toStream(false)).out);
    const gz = await fileRun(input, join(dir, 'out.jsonl.gz'), true);
    const { gunzipSync } = await import('node:zlib');
    assert.equal(gunzipSync(gz.out).toString(), fused.out);
  });

  it('fails a `strict` run with the same error as the general path', async () => {
    const input = join(dir, 'strict.csv');
    await writeFile(input, 'a,b\n1,2\n3\n');
    const run = (fused: boolean) => {
      const p = new Pipeline('t');
      const src = p.from(fileSource({ path: input, format: 'csv', strict: true }), { name: 'input' });
      (fused ? src : src.via(passThrough)).to(fileSink({ path: join(dir, 'strict.jsonl'), format: 'jsonl' }));
      return p.run({ log: quiet }).done;
    };
    const message = /invalid CSV at line 3 \(byte 8\): row has 1 fields, expected 2/;
    await assert.rejects(run(true), message);
    await assert.rejects(run(false), message);
  });

  for (const gz of [false, true])
    it(`under checkpoints, resumes after a crash with every row and every dead letter written exactly once (${gz ? 'gzip' : 'plain'} input)`, async () => {
      const d = join(dir, gz ? 'cp-gz' : 'cp');
      await mkdir(d, { recursive: true });
      const input = join(d, gz ? 'in.csv.gz' : 'in.csv');
      await writeFile(input, gz ? gzipSync(csvBytes(2000)) : csvBytes(2000));
      const expected = await fileRun(input, join(d, 'expected.jsonl'), false);
      const store = new CheckpointStore(memoryBackend());
      const clock = new ManualClock(0);
      const run = (failAt: number | undefined) => {
        const sink = watched(fileSink({ path: join(d, 'out.jsonl'), format: 'jsonl' }), failAt);
        const p = new Pipeline('cp');
        p.from(fileSource({ path: input, format: 'csv', batchSize: 16 }), { name: 'input' }).to(sink, {
          name: 'out',
        });
        p.dlq(fileSink({ path: join(d, 'dead.jsonl'), format: 'jsonl' }));
        const checkpoint = new CheckpointCoordinator({
          store,
          intervalMs: 0,
          everyRecords: 40,
          clock,
          log: quiet,
        });
        return { sink, done: p.run({ clock, checkpoint, log: quiet }).done };
      };
      const first = run(50);
      await assert.rejects(first.done, /crash/);
      assert.ok(first.sink.encoded.every(Boolean), 'fused under checkpoints');
      const second = run(undefined);
      assert.equal((await second.done).state, 'succeeded');
      assert.equal((await readFile(join(d, 'out.jsonl'))).toString(), expected.out.toString());
      const dead = (await readFile(join(d, 'dead.jsonl'), 'utf8'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as DeadLetter);
      assert.deepEqual(letters(dead), expected.dead);
    });
});

describe('a sink given pre-encoded bytes', () => {
  it('takes the bytes of a batch in its format, and refuses another format (a planner bug) rather than write it', () => {
    const bytes = Buffer.from('{"a":"1"}\n');
    const batch: Batch<unknown> = {
      kind: 'batch',
      records: new Array(1),
      encoded: { format: 'jsonl', bytes },
    };
    assert.equal(encodedBytes(batch, 'jsonl'), bytes);
    assert.equal(encodedBytes({ kind: 'batch', records: [{ a: '1' }] }, 'jsonl'), undefined);
    assert.throws(
      () => encodedBytes(batch, undefined),
      /pre-encoded as `jsonl` reached a sink writing `records`/,
    );
  });
});

describe('the planner fuses only a source feeding one JSON Lines sink directly', () => {
  const source = (options: Record<string, unknown> = {}) =>
    fileSource({ path: join(dir, 'never-read.csv'), format: 'csv', ...options });
  const jsonl = () => fileSink({ path: join(dir, 'never.jsonl'), format: 'jsonl' });

  it('fuses file (csv) → file (jsonl), file (csv) → stdout (jsonl) and stdin (csv) → file (jsonl)', () => {
    const a = new Pipeline('a');
    a.from(source()).to(jsonl());
    assert.deepEqual([...fuseEncodedOutput(a.graph).values()], ['jsonl']);
    const b = new Pipeline('b');
    b.from(source({ delimiter: ';', header: false })).to(stdoutSink({ format: 'jsonl' }));
    assert.deepEqual([...fuseEncodedOutput(b.graph).values()], ['jsonl']);
    const c = new Pipeline('c');
    c.from(stdinSource({ format: 'csv', stream: new PassThrough() })).to(jsonl());
    assert.deepEqual([...fuseEncodedOutput(c.graph).values()], ['jsonl']);
  });

  it('fuses the components a pipeline file builds (their specs fill in defaults), with every CSV option but `types`', () => {
    const csv = {
      path: 'in.csv',
      format: 'csv' as const,
      delimiter: ';',
      quote: "'",
      header: true,
      columns: ['a', 'b'],
      skipEmptyLines: false,
      maxRecordBytes: 1000,
      maxRawBytes: 10,
      strict: true,
      intern: false,
      compression: 'gzip' as const,
      batchSize: 10,
    };
    const fused = (src: Source, sink: Sink) => {
      const p = new Pipeline('t');
      p.from(src).to(sink);
      return fuseEncodedOutput(p.graph).size === 1;
    };
    const file = specFactory(fileSourceSpec);
    const stdin = specFactory(stdinSourceSpec);
    const toFile = specFactory(fileSinkSpec);
    const toStdout = specFactory(stdoutSinkSpec);
    assert.ok(fused(file(csv), toStdout({ format: 'jsonl' })));
    assert.ok(
      fused(file({ path: 'in.csv', format: 'csv' }), toFile({ path: 'o.jsonl.zst', format: 'jsonl' })),
    );
    assert.ok(fused(stdin({ format: 'csv', delimiter: '|' }), toStdout({ format: 'jsonl' })));
    assert.ok(!fused(file({ ...csv, types: { a: 'int' } }), toStdout({ format: 'jsonl' })));
    assert.ok(!fused(file(csv), toStdout({ format: 'csv' })));
  });

  it('does not fuse through a step, into two sinks, into another format, with `types`, a non-CSV input or a write-ahead log', () => {
    const cases: [string, (p: Pipeline) => void, boolean?][] = [
      ['a step between', (p) => p.from(source()).via(passThrough).to(jsonl())],
      [
        'two sinks',
        (p) => {
          const s = p.from(source());
          s.to(jsonl());
          s.to(stdoutSink({ format: 'jsonl' }));
        },
      ],
      ['a CSV sink', (p) => p.from(source()).to(fileSink({ path: join(dir, 'never.csv'), format: 'csv' }))],
      ['a sink writing records', (p) => p.from(source()).to(collect())],
      ['typed columns', (p) => p.from(source({ types: { id: 'int' } })).to(jsonl())],
      [
        'a JSON Lines input',
        (p) => p.from(fileSource({ path: join(dir, 'never.jsonl'), format: 'jsonl' })).to(jsonl()),
      ],
      ['a write-ahead log', (p) => p.from(source()).to(jsonl()), true],
    ];
    for (const [what, build, wal] of cases) {
      const p = new Pipeline('t');
      build(p);
      assert.equal(fuseEncodedOutput(p.graph, wal === true).size, 0, what);
    }
  });
});
