/**
 * The file connector with `format: csv` and compression, end to end through `Pipeline`: typed
 * CSV in, dead letters out, every codec round-tripped through the sink and the source, corrupt
 * and truncated input failing with the compressed byte offset.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { Decimal } from '../../core/decimal.ts';
import type { DeadLetter, Source } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { fileSink } from './sink.ts';
import { fileSource } from './source.ts';
import { fileSinkSpec, fileSourceSpec } from './spec.ts';
import { arraySource, collect, runWithDlq } from './test-helpers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-file-formats-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file source: csv', () => {
  it('reads typed columns with each row’s file, line and offset', async () => {
    const path = join(dir, 'typed.csv');
    const text =
      'id,amount,paid,ts,note\n1,12.50,true,2024-05-01T12:00:00Z,"a, b"\n2,0.99,no,2024-05-02,"multi\nline"\n';
    await writeFile(path, text);
    const src = fileSource({
      path,
      format: 'csv',
      chunkBytes: 5,
      types: { id: 'int', amount: { type: 'decimal', scale: 2 }, paid: 'bool', ts: 'timestamp' },
    });
    const { records, batches, dead } = await runWithDlq(src);
    assert.deepEqual(dead, []);
    // Decimals are exact `Decimal`s at the declared scale: compared by their text.
    const plain = (records as Record<string, unknown>[]).map((r) => ({ ...r, amount: String(r.amount) }));
    assert.deepEqual(plain, [
      { id: 1, amount: '12.50', paid: true, ts: Date.UTC(2024, 4, 1, 12), note: 'a, b' },
      { id: 2, amount: '0.99', paid: false, ts: Date.UTC(2024, 4, 2), note: 'multi\nline' },
    ]);
    const positions = batches.flatMap((b) => b.meta ?? []).map((m) => m?.position);
    assert.deepEqual(positions, [
      { file: path, line: 2, offset: 23 },
      { file: path, line: 3, offset: text.indexOf('2,0.99') },
    ]);
    // Lines consumed (four physical lines: the header, two rows, one of them spanning two) and bytes.
    assert.deepEqual(src.position(), { file: path, line: 4, offset: text.length });
    assert.deepEqual(src.progress(), { done: text.length, total: text.length, unit: 'bytes' });
  });

  it('sends an unterminated quote, a wrong column count, invalid UTF-8 and a bad value to the dlq; every other row arrives', async () => {
    const path = join(dir, 'bad.csv');
    const bytes = Buffer.concat([
      Buffer.from('id,name,qty\n1,ada,3\n2,"bob,4\n3,cy,5\n4,dee,6,extra\n5,'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(',7\n6,eve,x\n7,fay,9\n'),
    ]);
    await writeFile(path, bytes);
    // Small reads, so rows and the bad bytes straddle chunk boundaries.
    const { records, dead, summary } = await runWithDlq(
      fileSource({ path, format: 'csv', chunkBytes: 7, types: { id: 'int', qty: 'int' } }),
    );
    assert.equal(summary.state, 'succeeded');
    assert.deepEqual(records, [
      { id: 1, name: 'ada', qty: 3 },
      { id: 3, name: 'cy', qty: 5 },
      { id: 7, name: 'fay', qty: 9 },
    ]);
    const at = (s: string) => bytes.indexOf(s);
    assert.deepEqual(
      dead.map((d) => [d.position, d.error.line, d.error.offset, d.record, d.stage]),
      [
        [{ file: path, line: 3, offset: at('2,"bob') }, 3, at('2,"bob'), '2,"bob,4', 'input'],
        [{ file: path, line: 5, offset: at('4,dee') }, 5, at('4,dee'), '4,dee,6,extra', 'input'],
        [{ file: path, line: 6, offset: at('5,') }, 6, at('5,'), '5,\uFFFD\uFFFD,7', 'input'],
        [{ file: path, line: 7, offset: at('6,eve') }, 7, at('6,eve'), '6,eve,x', 'input'],
      ],
    );
    const messages = dead.map((d) => d.error.message);
    assert.ok(
      messages[0]!.startsWith(
        `invalid CSV at line 3 (byte ${at('2,"bob')}): unterminated quoted field 2; close the quote`,
      ),
      messages[0],
    );
    assert.ok(
      messages[1]!.startsWith(`invalid CSV at line 5 (byte ${at('4,dee')}): row has 4 fields, expected 3`),
      messages[1],
    );
    assert.ok(
      messages[2]!.startsWith(`invalid CSV at line 6 (byte ${at('5,')}): invalid UTF-8 in column \`name\``),
      messages[2],
    );
    assert.ok(
      messages[3]!.startsWith(
        `invalid CSV at line 7 (byte ${at('6,eve')}): column \`qty\`: "x" is not a valid int`,
      ),
      messages[3],
    );
    assert.equal(dead[3]?.error.column, 'qty');
    assert.equal(dead[3]?.error.value, 'x');
    assert.ok(dead.every((d) => d.error.code === 'SLUICE_PARSE'));
  });

  it('keeps only maxRawBytes of a bad row in its dead letter', async () => {
    const path = join(dir, 'wide.csv');
    await writeFile(path, `a,b\n${'x'.repeat(500)}\n1,2\n`);
    const { records, dead } = await runWithDlq(fileSource({ path, format: 'csv', maxRawBytes: 16 }));
    assert.deepEqual(records, [{ a: '1', b: '2' }]);
    assert.equal(dead[0]?.record, 'x'.repeat(16));
  });

  it('fails the run at the first bad row with `strict`, with the dead letter’s message', async () => {
    const path = join(dir, 'strict.csv');
    await writeFile(path, 'a,b\n1,2\n3\n4,5\n');
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'csv', strict: true }))
      .to(collect())
      .run();
    await assert.rejects(run.done, (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'SLUICE_PARSE');
      assert.match(
        err.message,
        /reading file `.*strict\.csv`: invalid CSV at line 3 \(byte 8\): row has 1 fields/,
      );
      assert.equal(err.context?.file, path);
      return true;
    });
  });

  it('fails the run with `strict` on a bad JSON line too', async () => {
    const path = join(dir, 'strict.jsonl');
    await writeFile(path, '{"a":1}\n{oops\n');
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'jsonl', strict: true }))
      .to(collect())
      .run();
    await assert.rejects(run.done, /line 2 \(byte 8\): invalid JSON/);
  });

  it('fails clearly when `types` names a column the header lacks', async () => {
    const path = join(dir, 'types.csv');
    await writeFile(path, 'id,amount\n1,2\n');
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'csv', types: { amout: 'decimal' } }))
      .to(collect())
      .run();
    await assert.rejects(run.done, /`types` names `amout`, not among the CSV columns \(id, amount\)/);
  });

  it('reads a semicolon file without a header, with given column names', async () => {
    const path = join(dir, 'semi.csv');
    await writeFile(path, '\uFEFF1;"x;y"\r\n2;z\r\n');
    const { records } = await runWithDlq(
      fileSource({ path, format: 'csv', delimiter: ';', header: false, columns: ['n', 's'] }),
    );
    assert.deepEqual(records, [
      { n: '1', s: 'x;y' },
      { n: '2', s: 'z' },
    ]);
  });
});

describe('file source and sink: compression', () => {
  const rows = Array.from({ length: 3000 }, (_, i) => ({
    id: String(i),
    country: ['US', 'DE', 'FR'][i % 3]!,
    note: i % 7 === 0 ? `has "quotes", commas\nand a newline ${i}` : `plain ${i}`,
  }));

  for (const ext of ['.gz', '.zst', '.br', '.sz', '.snappy', '.lz4']) {
    it(`writes ${ext} by extension and reads it back (csv)`, async () => {
      const path = join(dir, `round${ext === '.snappy' ? '-s' : ''}.csv${ext}`);
      await new Pipeline('w')
        .from(arraySource([rows.slice(0, 1000), rows.slice(1000)]))
        .to(fileSink({ path, format: 'csv' }))
        .run().done;
      const head = (await readFile(path)).subarray(0, 4);
      assert.notEqual(head.toString('latin1'), 'id,c', 'the file must be compressed');
      // `auto` reads the magic number (brotli has none: the extension decides).
      const src = fileSource({ path, format: 'csv', chunkBytes: 4096 });
      const { records } = await runWithDlq(src);
      assert.deepEqual(records, rows);
      const size = (await stat(path)).size;
      assert.deepEqual(src.progress(), { done: size, total: size, unit: 'bytes' });
    });
  }

  it('reads the same rows whatever the read size, plain or compressed (its read buffers are reused for csv)', async () => {
    const text = `id,country,note\n${rows.map((r) => `${r.id},${r.country},"${r.note.replaceAll('"', '""')}"`).join('\n')}\n`;
    const plain = join(dir, 'reuse.csv');
    const gz = join(dir, 'reuse-gz.csv');
    await writeFile(plain, text);
    await writeFile(gz, gzipSync(text));
    // Reads of 2 and 5 bytes: the magic-number check gathers several reads before it decides.
    for (const chunkBytes of [2, 5, 997, 65_536])
      for (const path of [plain, gz]) {
        const { records, dead } = await runWithDlq(fileSource({ path, format: 'csv', chunkBytes }));
        assert.deepEqual(dead, [], `${path}, reads of ${chunkBytes}`);
        assert.deepEqual(records, rows, `${path}, reads of ${chunkBytes}`);
      }
  });

  it('detects a compressed file by magic bytes whatever its name, and honours an explicit codec', async () => {
    const path = join(dir, 'misnamed.jsonl');
    await writeFile(path, zstdCompressSync(Buffer.from('{"a":1}\n{"a":2}\n')));
    const { records } = await runWithDlq(fileSource({ path, format: 'jsonl' }));
    assert.deepEqual(records, [{ a: 1 }, { a: 2 }]);
    const out = join(dir, 'explicit.out');
    await new Pipeline('w')
      .from(arraySource([[{ a: 1 }]]))
      .to(fileSink({ path: out, format: 'jsonl', compression: 'gzip', level: 9 }))
      .run().done;
    assert.equal(gunzipSync(await readFile(out)).toString(), '{"a":1}\n');
  });

  it('leaves no file behind when a compressed output is cancelled mid-run', async () => {
    const sub = join(dir, 'cancel-gz');
    const path = join(sub, 'out.jsonl.gz');
    const sink = fileSink({ path, format: 'jsonl' });
    const source: Source = {
      async run(out, ctx) {
        await out.emit({ kind: 'batch', records: [{ a: 1 }] });
        await new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        );
      },
    };
    const run = new Pipeline('t').from(source).to(sink).run();
    // Waits for the write (polling, not timing: a loaded machine may need many turns of the loop).
    for (let i = 0; i < 2000 && sink.recordsWritten < 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(sink.recordsWritten, 1);
    const summary = await run.stop({ drain: false });
    assert.equal(summary.state, 'cancelled');
    assert.deepEqual(await readdir(sub), []);
  });

  it('reads a compressed file as plain bytes with `compression: none`', async () => {
    const path = join(dir, 'raw.gz');
    await writeFile(path, gzipSync('x'));
    const { records, dead } = await runWithDlq(fileSource({ path, format: 'lines', compression: 'none' }));
    // The gzip bytes themselves: not UTF-8 text, so a dead letter rather than the line `x`.
    assert.deepEqual(records, []);
    assert.match(dead[0]!.error.message, /invalid UTF-8/);
  });

  /** A gzip of ~1 MB of CSV text: several 64 KiB slices of compressed input. */
  function bigCsvGzip(): Buffer {
    let text = 'id,name,note\n';
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    for (let i = 0; i < 40000; i++)
      text += `${i},name${next() % 997},${next().toString(36)}${next().toString(36)}\n`;
    return gzipSync(text);
  }

  it('fails a run on corrupt gzip with the compressed byte offset where it broke', async () => {
    const gz = bigCsvGzip();
    assert.ok(gz.length > 3 * 65536, `compressed size ${gz.length}`);
    // Random bytes over 4 KiB from 100 bytes into the third 64 KiB slice: deflate notices there
    // (damage that still decodes would only be caught by the CRC at the end of the file).
    let seed = 1;
    for (let i = 2 * 65536 + 100; i < 2 * 65536 + 100 + 4096; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      gz[i] = seed >>> 24;
    }
    const path = join(dir, 'corrupt.csv.gz');
    await writeFile(path, gz);
    // Deflate may turn the damage into garbage rows before it notices: those are dead letters;
    // the corruption itself fails the run.
    const p = new Pipeline('t');
    p.from(fileSource({ path, format: 'csv' })).to(collect());
    p.dlq(collect());
    const run = p.run();
    await assert.rejects(run.done, (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'SLUICE_STAGE');
      assert.match(
        err.message,
        /reading file `.*corrupt\.csv\.gz`: decompressing gzip: corrupt input in compressed bytes 131072–196608/,
      );
      assert.equal(err.context?.offset, 131072);
      assert.equal(err.context?.file, path);
      return true;
    });
  });

  it('fails a run on truncated input, naming where it ends', async () => {
    const gz = bigCsvGzip();
    const path = join(dir, 'truncated.csv.gz');
    await writeFile(path, gz.subarray(0, 100_000));
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'csv' }))
      .to(collect())
      .run();
    await assert.rejects(
      run.done,
      /input ends at compressed byte 100000 before the end of the stream.*the file is truncated/,
    );
  });
});

describe('file sink: csv', () => {
  it('writes a header from the first record’s keys, quoting where needed', async () => {
    const path = join(dir, 'out', 'rows.csv');
    await new Pipeline('w')
      .from(arraySource([[{ a: 'x,y', b: 1n }], [{ a: 'q"r', b: null, c: 'dropped' }]]))
      .to(fileSink({ path, format: 'csv' }))
      .run().done;
    assert.equal(await readFile(path, 'utf8'), 'a,b\n"x,y",1\n"q""r",\n');
  });

  it('writes configured columns (header even for an empty input) with a delimiter', async () => {
    const path = join(dir, 'out', 'cols.csv');
    await new Pipeline('w')
      .from(arraySource([]))
      .to(fileSink({ path, format: 'csv', columns: ['b', 'a'], delimiter: ';' }))
      .run().done;
    assert.equal(await readFile(path, 'utf8'), 'b;a\n');
  });

  it('sends a record that has no columns (a string) to the dlq and writes the others', async () => {
    const path = join(dir, 'out', 'mixed.csv');
    const dead = collect<DeadLetter>();
    const p = new Pipeline('w');
    p.from(arraySource([[{ a: 1 }, 'just text', { a: 2 }]])).to(fileSink({ path, format: 'csv' }), {
      name: 'sink',
    });
    p.dlq(dead);
    await p.run().done;
    assert.equal(await readFile(path, 'utf8'), 'a\n1\n2\n');
    assert.equal(dead.records()[0]?.record, 'just text');
    assert.match(dead.records()[0]!.error.message, /a CSV row must be an object .* got a string/);
  });

  it('rejects a level the codec does not take', () => {
    assert.throws(
      () => fileSink({ path: 'x.csv.gz', format: 'csv', level: 12 }),
      /`level` of gzip must be a whole number from 1 to 9, got 12/,
    );
    assert.throws(() => fileSink({ path: 'x.csv.lz4', format: 'csv', level: 3 }), /does not apply to lz4/);
    assert.throws(
      () => fileSink({ path: 'x.csv', format: 'csv', level: 3 }),
      /`level` needs a compressed output/,
    );
  });
});

describe('file specs: formats', () => {
  const problems = (r: {
    success: boolean;
    error?: { issues: { path: PropertyKey[]; message: string }[] };
  }) => (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

  it('accepts CSV options with format csv and builds a working source', async () => {
    const cfg = fileSourceSpec.config.parse({
      path: 'in.csv',
      format: 'csv',
      delimiter: ';',
      types: { n: 'int', amount: { type: 'decimal', scale: 2 } },
      intern: { entries: 1024 },
    });
    assert.equal(cfg.compression, 'auto');
    assert.equal(cfg.strict, false);
    await writeFile(join(dir, 'in.csv'), 'n;amount\n1;2.50\n');
    const src = fileSourceSpec.create(cfg, { baseDir: dir, pipelineName: 'p', stageName: 'input' });
    const { records } = await runWithDlq(src);
    const [r] = records as { n: number; amount: unknown }[];
    assert.ok(r !== undefined && Decimal.is(r.amount), 'a decimal column reads as a Decimal');
    assert.deepEqual({ n: r.n, amount: String(r.amount) }, { n: 1, amount: '2.50' });
  });

  it('rejects options of another format, naming the format they belong to', () => {
    assert.deepEqual(
      problems(
        fileSourceSpec.config.safeParse({ path: 'x', format: 'jsonl', delimiter: ';', header: false }),
      ),
      [
        'delimiter: `delimiter` applies to format `csv`, not `jsonl`; remove it',
        'header: `header` applies to format `csv`, not `jsonl`; remove it',
      ],
    );
    assert.deepEqual(
      problems(fileSourceSpec.config.safeParse({ path: 'x', format: 'csv', maxLineBytes: 10 })),
      [
        'maxLineBytes: `maxLineBytes` applies to format `lines` and `jsonl`, not `csv`; remove it (for CSV use `maxRecordBytes`)',
      ],
    );
    assert.equal(
      fileSourceSpec.config.safeParse({ path: 'x', format: 'csv', delimiter: ';;' }).success,
      false,
    );
    assert.equal(
      fileSourceSpec.config.safeParse({ path: 'x', format: 'csv', types: { a: 'money' } }).success,
      false,
    );
    assert.equal(
      fileSourceSpec.config.safeParse({ path: 'x', format: 'csv', compression: 'xz' }).success,
      false,
    );
  });

  it('checks the sink’s level against the codec its path or `compression` names', () => {
    assert.deepEqual(
      problems(fileSinkSpec.config.safeParse({ path: 'o.jsonl.zst', format: 'jsonl', level: 30 })),
      ['level: `level` of zstd must be a whole number from 1 to 22, got 30'],
    );
    assert.equal(
      fileSinkSpec.config.safeParse({ path: 'o.jsonl.zst', format: 'jsonl', level: 19 }).success,
      true,
    );
    assert.equal(
      fileSinkSpec.config.safeParse({ path: 'o.jsonl', format: 'jsonl', compression: 'brotli', level: 11 })
        .success,
      true,
    );
  });
});
