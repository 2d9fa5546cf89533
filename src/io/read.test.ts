import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch, Position, RecordMeta } from '../core/message.ts';
import type { SourceContext } from '../core/stage.ts';
import type { DecodeSink } from '../formats/format.ts';
import { type FormatName, formatDecoder } from '../formats/formats.ts';
import { pumpRecords } from './read.ts';

/** A seeded linear congruential generator (numbers in [0, 1)), so a failing input can be made again. */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    return x / 4_294_967_296;
  };
}

/** CSV rows, some with a quoted field over several lines, some with a field too many (invalid). */
function csvInput(rnd: () => number, rows: number): string {
  let s = 'id,note\n';
  for (let i = 0; i < rows; i++) {
    const r = rnd();
    if (r < 0.15) s += `${i},"first line\nsecond ${i}"\n`;
    else if (r < 0.2) s += `${i},a,extra\n`;
    else s += `${i},plain ${'x'.repeat(Math.floor(rnd() * 20))}\n`;
  }
  return s;
}

/** JSON Lines, some blank lines between them, some lines that are not JSON (invalid). */
function jsonlInput(rnd: () => number, rows: number): string {
  let s = '';
  for (let i = 0; i < rows; i++) {
    const r = rnd();
    if (r < 0.1) s += '\n';
    if (r > 0.95) s += `{"id":${i},}\n`;
    else s += `{"id":${i},"note":"${'é'.repeat(Math.floor(rnd() * 5))}"}\n`;
  }
  return s;
}

const position = (line: number, offset: number): Position => ({ file: 'in', line, offset });

/** The slow path: every record and dead letter with the position the decoder gave it, eagerly. */
function eager(format: FormatName, chunks: readonly Uint8Array[]) {
  const records: unknown[] = [];
  const meta: RecordMeta[] = [];
  const letters: RecordMeta[] = [];
  const decoder = formatDecoder(format);
  const sink: DecodeSink<unknown> = {
    record(value, line, offset) {
      records.push(value);
      meta.push({ source: 'input', position: position(line, offset) });
    },
    invalid(_error, _raw, line, offset) {
      letters.push({ source: 'input', position: position(line, offset) });
    },
  };
  for (const c of chunks) decoder.write(c, sink);
  decoder.end(sink);
  return { records, meta, letters };
}

/** pumpRecords over `chunks`: its batches, dead letters' meta and what `emitted` said before each batch. */
async function pumped(format: FormatName, chunks: readonly Uint8Array[], batchSize: number) {
  const batches: Batch<unknown>[] = [];
  const before: ({ line: number; offset: number } | undefined)[] = [];
  const letters: (RecordMeta | undefined)[] = [];
  let said: { line: number; offset: number } | undefined;
  const ctx = {
    name: 'input',
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    deadLetter(_raw: unknown, _error: unknown, meta?: RecordMeta) {
      letters.push(meta);
    },
  } as unknown as SourceContext;
  const out = {
    async emit(batch: Batch<unknown>) {
      batches.push(batch);
      before.push(said);
    },
    async signal() {},
  };
  async function* bytes() {
    yield* chunks;
  }
  await pumpRecords(bytes(), formatDecoder(format), out, ctx, {
    batchSize,
    position,
    emitted(next) {
      said = next;
    },
  });
  return { batches, before, letters };
}

/** `text` as UTF-8 cut into chunks of 1 to `max` bytes. */
function chunked(rnd: () => number, text: string, max: number): Uint8Array[] {
  const bytes = Buffer.from(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(rnd() * max);
    chunks.push(bytes.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

test('every batch’s meta, its origin, the dead letters and `emitted` match the positions the decoder gave', async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = random(seed);
    const format: FormatName = seed % 2 === 0 ? 'csv' : 'jsonl';
    const text = format === 'csv' ? csvInput(rnd, 200) : jsonlInput(rnd, 200);
    const chunks = chunked(rnd, text, seed % 3 === 0 ? 64 : 4096);
    const batchSize = 1 + Math.floor(rnd() * 40);
    const want = eager(format, chunks);
    const got = await pumped(format, chunks, batchSize);
    const where = `seed ${seed} (${format}, batchSize ${batchSize})`;
    assert.deepEqual(
      got.batches.flatMap((b) => b.records),
      want.records,
      where,
    );
    assert.deepEqual(
      got.batches.flatMap((b) => b.meta ?? []),
      want.meta,
      where,
    );
    assert.ok(
      got.batches.every(
        (b) =>
          b.records.length <= batchSize && b.origin?.source === 'input' && b.origin.partition === undefined,
      ),
      where,
    );
    assert.deepEqual(got.letters, want.letters, where);
    // What `emitted` says before a batch, when it says where the next starts: the next batch's first record.
    let told = 0;
    for (let i = 0; i < got.batches.length; i++) {
      const next = got.before[i];
      if (next === undefined) continue;
      told++;
      const first = got.batches[i + 1]?.meta?.[0]?.position;
      assert.deepEqual({ file: 'in', ...next }, first, `${where}, batch ${i}`);
    }
    if (seed % 3 !== 0 && batchSize < 10) assert.ok(told > 0, where); // chunks of 4 KiB hold several batches
  }
});

test('a position `emitted` reports has every dead letter before it sent, and none after it (a checkpoint there loses none and repeats none)', async () => {
  const check = async (
    format: FormatName,
    chunks: readonly Uint8Array[],
    batchSize: number,
    where: string,
  ) => {
    const sentOffsets: number[] = [];
    const ctx = {
      name: 'input',
      signal: new AbortController().signal,
      stopSignal: new AbortController().signal,
      deadLetter(_raw: unknown, _error: unknown, meta?: RecordMeta) {
        sentOffsets.push(((meta as RecordMeta).position as { offset: number }).offset);
      },
    } as unknown as SourceContext;
    const out = { async emit() {}, async signal() {} };
    async function* bytes() {
      yield* chunks;
    }
    let positions = 0;
    await pumpRecords(bytes(), formatDecoder(format), out, ctx, {
      batchSize,
      position,
      emitted(next) {
        if (next === undefined) return;
        positions++;
        const before = eager(format, chunks).letters.map((m) => (m.position as { offset: number }).offset);
        const owed = before.filter((o) => o < next.offset);
        assert.deepEqual(
          sentOffsets,
          owed,
          `${where}: letters sent when the position is offset ${next.offset}`,
        );
      },
    });
    return positions;
  };
  // The case that lost a letter: batch [1, 2] ends, the bad row follows, the next batch starts after it.
  const told = await check('csv', [Buffer.from('a\n1\n2\nBAD,x\n3\n')], 2, 'spelled out');
  assert.equal(told, 1);
  for (let seed = 1; seed <= 20; seed++) {
    const rnd = random(seed);
    const format: FormatName = seed % 2 === 0 ? 'csv' : 'jsonl';
    const text = format === 'csv' ? csvInput(rnd, 120) : jsonlInput(rnd, 120);
    await check(format, chunked(rnd, text, 4096), 1 + Math.floor(rnd() * 6), `seed ${seed} (${format})`);
  }
});
