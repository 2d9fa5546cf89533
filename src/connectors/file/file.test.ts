import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createGunzip, gzipSync } from 'node:zlib';
import type { DeadLetter, Sink, Source } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { fileSink } from './sink.ts';
import { fileSource, readFileChunks } from './source.ts';
import { fileSinkSpec, fileSourceSpec } from './spec.ts';
import { collect } from './test-helpers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-file-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readFileChunks', () => {
  it('hands on large reads into reused buffers as chunks of `chunkBytes`, every byte once, in order', async () => {
    const path = join(dir, 'chunks.bin');
    // 3 reads of 1 MiB and a short one, none ending on a chunk boundary.
    const data = Buffer.alloc(3 * 1024 * 1024 + 70_001);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2_654_435_761) >>> 24;
    await writeFile(path, data);
    for (const from of [0, 12_345]) {
      const h = await open(path, 'r');
      try {
        const got: Buffer[] = [];
        let reported = 0;
        for await (const c of readFileChunks(h, {
          from,
          chunkBytes: 64 * 1024,
          readBytes: 1024 * 1024,
          reuseBuffers: true,
          readAhead: true,
          onRead: (n) => {
            reported += n;
          },
        })) {
          assert.ok(c.length > 0 && c.length <= 64 * 1024, `chunk of ${c.length} bytes`);
          got.push(Buffer.from(c)); // copied before the next one is asked for, as the contract says
        }
        assert.ok(Buffer.concat(got).equals(data.subarray(from)), `the bytes from ${from}`);
        assert.equal(reported, data.length - from);
      } finally {
        await h.close();
      }
    }
  });
});

describe('file source', () => {
  it('reads JSON Lines into batches with each record’s file, line and offset', async () => {
    const path = join(dir, 'in.jsonl');
    await writeFile(path, '{"id":1}\n{"id":2}\n\n{"id":3}\n{"id":4}');
    const out = collect();
    const src = fileSource({ path, format: 'jsonl', batchSize: 3 });
    const summary = await new Pipeline('t').from(src, { name: 'input' }).to(out).run().done;
    assert.equal(summary.state, 'succeeded');
    assert.deepEqual(out.records(), [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
    assert.deepEqual(
      out.batches.map((b) => b.records.length),
      [3, 1],
    );
    assert.deepEqual(out.batches[0]?.meta?.[2], {
      source: 'input',
      position: { file: path, line: 4, offset: 19 },
    });
    assert.deepEqual(src.position(), { file: path, line: 5, offset: 36 });
    assert.deepEqual(src.progress(), { done: 36, total: 36, unit: 'bytes' });
  });

  it('sends a malformed line to the dlq with its line and offset while every other line arrives', async () => {
    const path = join(dir, 'bad.jsonl');
    const lines = ['{"id":1}', '{"id":2}', '{"id":3,}', '{"id":4}', 'nope', '{"id":6}'];
    await writeFile(path, `${lines.join('\n')}\n`);
    const out = collect();
    const dead = collect<DeadLetter>();
    const p = new Pipeline('t');
    p.from(fileSource({ path, format: 'jsonl', chunkBytes: 7 }), { name: 'input' }).to(out);
    p.dlq(dead);
    const summary = await p.run().done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(summary.deadLetters, 2);
    assert.deepEqual(out.records(), [{ id: 1 }, { id: 2 }, { id: 4 }, { id: 6 }]);
    const [first, second] = dead.records();
    assert.ok(first && second);
    assert.equal(first.record, '{"id":3,}');
    assert.equal(first.stage, 'input');
    assert.equal(first.source, 'input');
    assert.deepEqual(first.position, { file: path, line: 3, offset: 18 });
    assert.equal(first.error.code, 'SLUICE_PARSE');
    assert.match(
      first.error.message,
      /^line 3 \(byte 18\): invalid JSON: .*; fix the line or let it go to the dlq$/,
    );
    assert.equal(first.error.line, 3);
    assert.equal(first.error.offset, 18);
    assert.equal(second.record, 'nope');
    assert.deepEqual(second.position, { file: path, line: 5, offset: 37 });
  });

  it('sends a line over maxLineBytes and a line of invalid UTF-8 to the dlq', async () => {
    const path = join(dir, 'long.txt');
    await writeFile(
      path,
      Buffer.concat([
        Buffer.from(`short\n${'x'.repeat(100)}\nbad `),
        Buffer.from([0xc3]),
        Buffer.from('\nend\n'),
      ]),
    );
    const out = collect();
    const dead = collect<DeadLetter>();
    const p = new Pipeline('t');
    p.from(fileSource({ path, format: 'lines', maxLineBytes: 10, chunkBytes: 16 })).to(out);
    p.dlq(dead);
    await p.run().done;
    assert.deepEqual(out.records(), ['short', 'end']);
    const letters = dead.records();
    assert.equal(letters.length, 2);
    assert.match(letters[0]!.error.message, /^line 2 \(byte 6\): line longer than maxLineBytes \(10 bytes\)/);
    assert.equal(letters[0]!.record, 'x'.repeat(10));
    assert.match(letters[1]!.error.message, /^line 3 \(byte 107\): invalid UTF-8/);
  });

  it('fails the run when a line is bad and no dlq is configured', async () => {
    const path = join(dir, 'nodlq.jsonl');
    await writeFile(path, '{"a":1}\n{oops\n');
    const out = collect();
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'jsonl' }))
      .to(out)
      .run();
    await assert.rejects(run.done, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SLUICE_NO_DLQ');
      assert.match(err.message, /line 2 \(byte 8\): invalid JSON/);
      return true;
    });
  });

  it('fails with a clear error naming the path when the file does not exist', async () => {
    const path = join(dir, 'missing.jsonl');
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'jsonl' }))
      .to(collect())
      .run();
    await assert.rejects(run.done, (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'SLUICE_STAGE');
      assert.ok(err.message.includes(`file \`${path}\` does not exist`), err.message);
      assert.equal(err.context?.file, path);
      return true;
    });
  });

  it('fails clearly on a directory', async () => {
    const run = new Pipeline('t')
      .from(fileSource({ path: dir, format: 'lines' }))
      .to(collect())
      .run();
    await assert.rejects(run.done, /is a directory; `path` must name a file/);
  });

  it('rejects a bad batchSize and an unknown format', () => {
    assert.throws(
      () => fileSource({ path: 'x', format: 'jsonl', batchSize: 0 }),
      /batchSize must be a whole number/,
    );
    assert.throws(
      () => fileSource({ path: 'x', format: 'xml' as 'jsonl' }),
      /unknown format `xml`; use `jsonl`, `csv`, `lines`/,
    );
  });

  it('stops reading on a graceful stop and emits what it read, in order', async () => {
    const path = join(dir, 'big.txt');
    const total = 5000;
    await writeFile(path, Array.from({ length: total }, (_, i) => `line ${i}\n`).join(''));
    const got: string[] = [];
    let stop: (() => void) | undefined;
    const sink: Sink<string> = {
      write(b) {
        got.push(...b.records);
        stop?.();
      },
    };
    const run = new Pipeline('t')
      .from(fileSource({ path, format: 'lines', chunkBytes: 64, batchSize: 10 }))
      .to(sink)
      .run();
    stop = () => void run.stop();
    const summary = await run.done;
    assert.equal(summary.state, 'succeeded');
    assert.ok(got.length > 0 && got.length < total, `read ${got.length}`);
    assert.deepEqual(
      got,
      Array.from({ length: got.length }, (_, i) => `line ${i}`),
    );
  });

  it('ends quietly when cancelled', async () => {
    const path = join(dir, 'big2.txt');
    await writeFile(path, 'x\n'.repeat(10000));
    let cancel: (() => void) | undefined;
    const sink: Sink = {
      write() {
        cancel?.();
      },
    };
    const src = fileSource({ path, format: 'lines', chunkBytes: 32 });
    const run = new Pipeline('t').from(src).to(sink).run();
    cancel = () => void run.stop({ drain: false });
    const summary = await run.done;
    assert.equal(summary.state, 'cancelled');
    assert.ok(src.progress().done < 20000);
    await src.close?.(); // a second close must not throw
  });

  it('lets a byte transform (decompression) sit between the file and the decoder', async () => {
    const path = join(dir, 'in.jsonl.gz');
    await writeFile(path, gzipSync('{"a":1}\n{"a":2}\n'));
    const out = collect();
    const src = fileSource({
      path,
      format: 'jsonl',
      compression: 'none',
      transform: (bytes) => Readable.from(bytes).pipe(createGunzip()),
    });
    await new Pipeline('t').from(src).to(out).run().done;
    assert.deepEqual(out.records(), [{ a: 1 }, { a: 2 }]);
    assert.deepEqual(src.position(), { file: path, line: 2, offset: 16 });
  });
});

/** A source that emits `batches` and then waits until cancelled (or ends, with `end: true`). */
function scripted(batches: unknown[][], end: boolean): Source {
  return {
    async run(out, ctx) {
      for (const records of batches) await out.emit({ kind: 'batch', records });
      if (end) return;
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    },
  };
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition never became true');
}

describe('file sink', () => {
  it('writes to a temp file and renames it on success, creating the folder', async () => {
    const path = join(dir, 'out', 'nested', 'res.jsonl');
    const sink = fileSink({ path, format: 'jsonl' });
    assert.match(sink.tempPath, /\/out\/nested\/\.res\.jsonl\.sluice-tmp-\d+-\d+$/);
    assert.ok(sink.tempPath.startsWith(join(dir, 'out', 'nested', `.res.jsonl.sluice-tmp-${process.pid}-`)));
    await new Pipeline('t')
      .from(scripted([[{ a: 1 }, { b: 2n }], ['s']], true))
      .to(sink)
      .run().done;
    assert.equal(await readFile(path, 'utf8'), '{"a":1}\n{"b":"2"}\n"s"\n');
    assert.deepEqual(await readdir(join(dir, 'out', 'nested')), ['res.jsonl']);
    assert.equal(sink.recordsWritten, 3);
  });

  it('writes an empty file for an empty input', async () => {
    const path = join(dir, 'empty.txt');
    await new Pipeline('t')
      .from(scripted([], true))
      .to(fileSink({ path, format: 'lines' }))
      .run().done;
    assert.equal(await readFile(path, 'utf8'), '');
  });

  it('removes the temp file on cancel and leaves nothing under the final name', async () => {
    const sub = join(dir, 'cancel');
    const path = join(sub, 'res.txt');
    const sink = fileSink({ path, format: 'lines' });
    const run = new Pipeline('t')
      .from(scripted([['a', 'b']], false))
      .to(sink)
      .run();
    await waitFor(() => sink.recordsWritten === 2);
    assert.ok(existsSync(sink.tempPath));
    const summary = await run.stop({ drain: false });
    assert.equal(summary.state, 'cancelled');
    assert.equal(existsSync(path), false);
    assert.deepEqual(await readdir(sub), []);
  });

  it('leaves no file under the final name after a failure, and keeps an older file intact', async () => {
    const sub = join(dir, 'fail');
    await mkdir(sub);
    const path = join(sub, 'res.txt');
    await writeFile(path, 'previous good output\n');
    const p = new Pipeline('t');
    p.from(scripted([['a'], ['b']], true))
      .via({
        process(b, out) {
          if (b.records[0] === 'b') throw new Error('boom');
          return out.emit(b);
        },
      })
      .to(fileSink({ path, format: 'lines' }));
    await assert.rejects(p.run().done, /boom/);
    assert.equal(await readFile(path, 'utf8'), 'previous good output\n');
    assert.deepEqual(await readdir(sub), ['res.txt']);
  });

  it('fails at open with the path when the destination cannot be created', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, '');
    const path = join(blocker, 'res.txt');
    const run = new Pipeline('t')
      .from(scripted([['a']], true))
      .to(fileSink({ path, format: 'lines' }))
      .run();
    await assert.rejects(run.done, (err: Error) => {
      assert.ok(err.message.includes(`creating file \`${path}\``), err.message);
      return true;
    });
  });
});

describe('file specs', () => {
  it('fills defaults, resolves relative paths against baseDir and builds working stages', async () => {
    const cfg = fileSourceSpec.config.parse({ path: 'in.jsonl', format: 'jsonl' });
    assert.deepEqual(cfg, {
      path: 'in.jsonl',
      format: 'jsonl',
      compression: 'auto',
      batchSize: 1024,
      strict: false,
    });
    await writeFile(join(dir, 'spec-in.jsonl'), '{"x":1}\n');
    const ctx = { baseDir: dir, pipelineName: 'p', stageName: 'input' };
    const src = fileSourceSpec.create(
      fileSourceSpec.config.parse({ path: 'spec-in.jsonl', format: 'jsonl' }),
      ctx,
    );
    const sink = fileSinkSpec.create(
      fileSinkSpec.config.parse({ path: 'spec-out/o.jsonl', format: 'jsonl' }),
      ctx,
    );
    await new Pipeline('t').from(src).to(sink).run().done;
    assert.equal(await readFile(join(dir, 'spec-out', 'o.jsonl'), 'utf8'), '{"x":1}\n');
  });

  it('rejects unknown fields, a bad format and a missing path', () => {
    const r = fileSourceSpec.config.safeParse({ path: 'x', format: 'xml', maxLineByte: 3 });
    assert.equal(r.success, false);
    const paths = r.error?.issues.map((i) => (i.path.length ? i.path.join('.') : i.code)) ?? [];
    assert.ok(paths.includes('format'));
    assert.ok(paths.includes('unrecognized_keys'));
    assert.equal(fileSinkSpec.config.safeParse({ format: 'jsonl' }).success, false);
    assert.equal(
      fileSourceSpec.config.safeParse({ path: 'x', format: 'lines', batchSize: 0 }).success,
      false,
    );
  });
});
