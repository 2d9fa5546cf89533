/**
 * The file connector with `format: avro` and `format: protobuf`, end to end: Avro container files
 * written by Python's fastavro (every codec) read by the file source — in the shape of a newer
 * reader schema —, files the file sink writes read by fastavro, a damaged block dead-lettered with
 * its byte offset while the rest flows, a restart of the source from a checkpointed position in
 * the middle of a block, a sink continued after a restart, and the spec's checks.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
// `Root#toDescriptor` (the formats load this extension only when a pipeline uses protobuf).
import 'protobufjs/ext/descriptor/index.js';
import { pythonWithFastavro } from '../../../scripts/services/registry.ts';
import type { Batch, Position } from '../../core/message.ts';
import type { DeadLetter, Source } from '../../core/stage.ts';
import { paymentSchema, plainValue } from '../../formats/avro-file/test-helpers.ts';
import { Pipeline } from '../../pipeline.ts';
import { fileSink } from './sink.ts';
import { fileSource } from './source.ts';
import { fileSinkSpec, fileSourceSpec } from './spec.ts';
import { arraySource, collect, runWithDlq as run, stageContext } from './test-helpers.ts';

/** Runs `src` with a dlq; records as plain objects (avsc makes them instances of a class per record type). */
async function runWithDlq(src: Source) {
  const r = await run(src);
  return { ...r, records: r.records.map(plain) };
}

const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TOOL = join(PROJECT, 'test/schemas/avro_file_tool.py');

const V1 = paymentSchema();
/** v2: `id` promoted to… long stays; a new field with a default; `user` renamed with an alias. */
const V2 = {
  ...V1,
  fields: [
    V1.fields[0],
    { name: 'customer', type: 'string', aliases: ['user'] },
    V1.fields[2],
    V1.fields[3],
    { name: 'channel', type: 'string', default: 'web' },
  ],
};

let dir: string;
let python: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-file-avro-'));
  python = pythonWithFastavro();
  // The snappy and zstandard codecs of fastavro need these (the shared venv has fastavro only).
  if (spawnSync(python, ['-c', 'import cramjam, zstandard']).status !== 0) {
    const r = spawnSync(
      python,
      ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'cramjam', 'zstandard'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function py(args: string[], input = ''): string {
  const r = spawnSync(python, [TOOL, ...args], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function payments(n: number): { id: number | bigint; user: string; amount: string; ts: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i === 5 ? 2n ** 60n + 1n : i,
    user: `user-${i % 7}`,
    amount: `${i}.${String(i % 100).padStart(2, '0')}`,
    ts: new Date(Date.UTC(2024, 2, 1) + i * 1500).toISOString(),
  }));
}

/** A job for the Python tool: decimals as `{"$decimal": …}`, times as epoch ms, bigints as JSON numbers. */
function job(schema: object, records: ReturnType<typeof payments>): string {
  const rows = records.map((r) => ({
    ...r,
    amount: { $decimal: r.amount },
    ts: Date.parse(r.ts),
    id: `@${r.id}@`,
  }));
  return JSON.stringify({ schema, records: rows }).replace(/"@(-?\d+)@"/g, '$1');
}

const plain = plainValue;

describe('file: avro', () => {
  for (const codec of ['null', 'deflate', 'snappy', 'zstandard']) {
    it(`reads a fastavro file (codec ${codec}) with a reader schema`, async () => {
      const records = payments(500);
      const path = join(dir, `py-${codec}.avro`);
      py(['write', path, codec, '2000'], job(V1, records));
      const readerPath = join(dir, 'v2.avsc');
      await writeFile(readerPath, JSON.stringify(V2));
      const src = fileSourceSpec.create(
        fileSourceSpec.config.parse({ path, format: 'avro', readerSchema: 'v2.avsc', batchSize: 64 }),
        { baseDir: dir, pipelineName: 'p', stageName: 'input' },
      );
      const { records: got, dead, batches } = await runWithDlq(src);
      assert.deepEqual(dead, []);
      assert.deepEqual(
        got,
        records.map(({ user, ...r }) => ({
          id: r.id,
          customer: user,
          amount: r.amount,
          ts: r.ts,
          channel: 'web',
        })),
      );
      const offsets = new Set(
        batches
          .flatMap((b) => b.meta ?? [])
          .map((m) => (m?.position as { offset: number } | undefined)?.offset),
      );
      assert.ok(offsets.size > 3, `several blocks (${offsets.size})`);
    });
  }

  for (const codec of ['null', 'deflate', 'snappy', 'zstandard'] as const) {
    it(`writes a file fastavro reads (codec ${codec}); a record that does not fit goes to the dlq`, async () => {
      const records = payments(300);
      await writeFile(join(dir, 'v1.avsc'), JSON.stringify(V1));
      const path = join(dir, `out-${codec}.avro`);
      const sink = fileSinkSpec.create(
        fileSinkSpec.config.parse({ path, format: 'avro', schema: 'v1.avsc', codec }),
        {
          baseDir: dir,
          pipelineName: 'p',
          stageName: 'out',
        },
      );
      const dead = collect<DeadLetter>();
      const p = new Pipeline('w');
      const bad = { ...records[1], amount: '1.234' };
      p.from(arraySource([records.slice(0, 100), [bad], records.slice(100)])).to(sink);
      p.dlq(dead);
      await p.run().done;
      assert.equal(dead.records().length, 1);
      assert.match((dead.records()[0] as DeadLetter).error.message, /field `amount`: "1.234" is not a valid/);
      const back = py(['read', path])
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l.replace(/"id":(\d{16,})/, '"id":"$1"')));
      assert.deepEqual(
        back,
        records.map((r) => ({ ...r, id: typeof r.id === 'bigint' ? String(r.id) : r.id })),
      );
      // And Sluice reads its own file back.
      const again = await runWithDlq(fileSource({ path, format: 'avro' }));
      assert.deepEqual(again.records, records);
    });
  }

  it('a damaged block goes to the dlq with its byte offset and block number; the rest flows', async () => {
    const records = payments(400);
    const path = join(dir, 'damaged.avro');
    py(['write', path, 'deflate', '1500'], job(V1, records));
    const clean = await runWithDlq(fileSource({ path, format: 'avro' }));
    const positions = clean.batches
      .flatMap((b) => b.meta ?? [])
      .map((m) => m?.position as { offset: number });
    const blocks = [...new Set(positions.map((p) => p.offset))];
    const third = blocks[2] as number;
    const bytes = Buffer.from(await readFile(path));
    bytes.fill(0x55, third + 10, third + 60);
    await writeFile(path, bytes);
    const { records: got, dead } = await runWithDlq(fileSource({ path, format: 'avro', batchSize: 50 }));
    assert.equal(dead.length, 1);
    const letter = dead[0] as DeadLetter;
    assert.match(letter.error.message, new RegExp(`Avro block 3 \\(byte ${third}\\)`));
    assert.deepEqual(letter.position, { file: path, line: 0, offset: third });
    assert.equal(letter.error.block, 3);
    assert.ok(Buffer.from(String(letter.record), 'base64').length > 0, 'the raw block as base64');
    const kept = records.filter((_, i) => positions[i]?.offset !== third);
    assert.ok(kept.length < records.length);
    assert.deepEqual(got, kept);
  });

  it('resumes from a checkpointed position in the middle of a block: nothing lost or repeated', async () => {
    const records = payments(300);
    const path = join(dir, 'resume.avro');
    py(['write', path, 'snappy', '3000'], job(V1, records));
    // Run until a few batches were emitted, remembering the position after each.
    const seen: unknown[] = [];
    const marks: { position: Position; count: number }[] = [];
    const first = fileSource({ path, format: 'avro', batchSize: 37 });
    await first.open?.(context());
    await first.run(
      {
        async emit(b: Batch<unknown>) {
          if (b.kind !== 'batch') return;
          seen.push(...b.records.map(plain));
          marks.push({ position: first.position(), count: seen.length });
        },
      } as never,
      context(),
    );
    await first.close?.();
    assert.deepEqual(seen, records);
    const mids = marks.filter((m) => (m.position.line as number) > 0);
    assert.ok(mids.length > 0, 'some checkpoints fall inside a block');
    for (const mark of [mids[0], mids.at(-1), marks[0]]) {
      if (mark === undefined) continue;
      // `none`: the file is seeked to the block; `auto`: read from the top and skipped.
      for (const compression of ['none', 'auto'] as const) {
        const again = fileSource({ path, format: 'avro', batchSize: 10, compression });
        await again.restore?.(mark.position);
        const { records: rest } = await runWithDlq(again);
        assert.deepEqual(rest, records.slice(mark.count), `resumed at ${JSON.stringify(mark.position)}`);
      }
    }
  });

  it('a sink restored from a checkpoint continues the same file', async () => {
    const path = join(dir, 'continued.avro');
    const schema = JSON.stringify(V1);
    const records = payments(30);
    const a = fileSink({ path, format: 'avro', schema, codec: 'deflate' });
    const ctx = context(true);
    await a.open?.(ctx);
    await a.write({ kind: 'batch', records: records.slice(0, 10) });
    await a.onSignal?.({ kind: 'barrier', id: 1 });
    const state = a.snapshot?.(1);
    await a.write({ kind: 'batch', records: records.slice(10, 20) }); // lost: after the checkpoint
    await a.close?.();
    const b = fileSink({ path, format: 'avro', schema, codec: 'deflate' });
    await b.open?.(ctx);
    await b.restore?.(state);
    await b.write({ kind: 'batch', records: records.slice(10) });
    await b.finish?.();
    await b.close?.();
    const { records: got, dead } = await runWithDlq(fileSource({ path, format: 'avro' }));
    assert.deepEqual(dead, []);
    assert.deepEqual(got, records);
    assert.equal(py(['read', path]).trim().split('\n').length, 30, 'fastavro reads the continued file');
  });

  it('spec: schema fields belong to their format; files are read and checked at create', async () => {
    const problems = (r: {
      success: boolean;
      error?: { issues: { path: PropertyKey[]; message: string }[] };
    }) => (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.deepEqual(problems(fileSinkSpec.config.safeParse({ path: 'o.avro', format: 'avro' })), [
      'schema: `format: avro` needs `schema`, the writer schema file (`.avsc`)',
    ]);
    assert.deepEqual(
      problems(fileSourceSpec.config.safeParse({ path: 'x', format: 'csv', readerSchema: 'a.avsc' })),
      ['readerSchema: `readerSchema` applies to format `avro`, not `csv`; remove it'],
    );
    assert.deepEqual(problems(fileSourceSpec.config.safeParse({ path: 'x', format: 'protobuf' })), [
      'descriptor: `format: protobuf` needs `descriptor`, a FileDescriptorSet file',
    ]);
    assert.deepEqual(
      problems(fileSourceSpec.config.safeParse({ path: 'x', format: 'avro', maxLineBytes: 9 })),
      ['maxLineBytes: `maxLineBytes` applies to format `lines` and `jsonl`, not `avro`; remove it'],
    );
    await writeFile(
      join(dir, 'bad.avsc'),
      '{"type":"record","name":"X","fields":[{"name":"a","type":"strin"}]}',
    );
    const ctx = { baseDir: dir, pipelineName: 'p', stageName: 's' };
    assert.throws(
      () =>
        fileSinkSpec.create(
          fileSinkSpec.config.parse({ path: 'o.avro', format: 'avro', schema: 'bad.avsc' }),
          ctx,
        ),
      /the schema `bad.avsc` is not a valid Avro schema/,
    );
    assert.throws(
      () =>
        fileSourceSpec.create(
          fileSourceSpec.config.parse({ path: 'x', format: 'avro', readerSchema: 'none.avsc' }),
          ctx,
        ),
      /reading the reader schema `none.avsc`/,
    );
    const src = fileSource({ path: join(dir, 'v1.avsc'), format: 'avro' });
    const { summary } = await runWithDlq(src).catch((err: Error) => ({ summary: err }));
    assert.match(String(summary), /not an Avro object container file/);
  });
});

describe('file: protobuf', () => {
  it('writes length-delimited messages and reads them back through the spec, with a descriptor file', async () => {
    const root = new protobuf.Root();
    protobuf.parse(
      'syntax = "proto3"; package shop; message Order { int64 id = 1; string user = 2; }',
      root,
      {
        keepCase: true,
      },
    );
    const set = (
      root as unknown as {
        toDescriptor(e: string): { $type: { encode(m: unknown): { finish(): Uint8Array } } };
      }
    ).toDescriptor('proto3');
    await writeFile(join(dir, 'order.pb'), set.$type.encode(set).finish());
    const ctx = { baseDir: dir, pipelineName: 'p', stageName: 's' };
    const orders = Array.from({ length: 100 }, (_, i) => ({ id: i === 9 ? 2n ** 62n : i, user: `u${i}` }));
    const sink = fileSinkSpec.create(
      fileSinkSpec.config.parse({
        path: 'orders.bin',
        format: 'protobuf',
        descriptor: 'order.pb',
        messageType: 'shop.Order',
      }),
      ctx,
    );
    await new Pipeline('w')
      .from(arraySource([orders.slice(0, 40), orders.slice(40)]))
      .to(sink)
      .run().done;
    const src = fileSourceSpec.create(
      fileSourceSpec.config.parse({ path: 'orders.bin', format: 'protobuf', descriptor: 'order.pb' }),
      ctx,
    );
    const { records, dead } = await runWithDlq(src);
    assert.deepEqual(dead, []);
    assert.deepEqual(records, orders);
    assert.throws(
      () =>
        fileSourceSpec.create(
          fileSourceSpec.config.parse({ path: 'x', format: 'protobuf', descriptor: 'v1.avsc' }),
          ctx,
        ),
      /the descriptor `v1.avsc` is not a usable FileDescriptorSet/,
    );

    // A record the sink cannot encode goes to the dlq naming the field; the others are written.
    const bad = fileSinkSpec.create(
      fileSinkSpec.config.parse({
        path: 'bad.bin',
        format: 'protobuf',
        descriptor: 'order.pb',
        messageType: 'shop.Order',
      }),
      ctx,
    );
    const rejected = collect<DeadLetter>();
    const w = new Pipeline('w2');
    w.from(arraySource([[orders[0], { id: 'seven', user: 'u' }, orders[1]]])).to(bad);
    w.dlq(rejected);
    await w.run().done;
    assert.equal(rejected.records().length, 1);
    assert.match(
      rejected.records()[0]?.error.message ?? '',
      /field `id`: `seven` is not a 64-bit integer \(`int64`\)/,
    );

    // A length prefix beyond the limit (2^31 bytes) in the middle of the file: one dead letter at
    // its byte offset and message number; what precedes it flows, nothing after it can be framed.
    const good = await readFile(join(dir, 'bad.bin'));
    await writeFile(
      join(dir, 'cut.bin'),
      Buffer.concat([good, Buffer.from([0x80, 0x80, 0x80, 0x80, 0x08]), good]),
    );
    const cut = await runWithDlq(
      fileSourceSpec.create(
        fileSourceSpec.config.parse({ path: 'cut.bin', format: 'protobuf', descriptor: 'order.pb' }),
        ctx,
      ),
    );
    assert.deepEqual(cut.records, [orders[0], orders[1]]);
    assert.equal(cut.dead.length, 1);
    const letter = cut.dead[0] as DeadLetter;
    assert.match(
      letter.error.message,
      new RegExp(`Protobuf message 3 \\(byte ${good.length}\\): its length 2147483648 is beyond the limit`),
    );
    assert.deepEqual(letter.position, { file: join(dir, 'cut.bin'), line: 3, offset: good.length });
  });
});

const context = (checkpointing = false) => stageContext(checkpointing, 'input');
