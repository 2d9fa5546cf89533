import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { DeadLetter } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { arraySource, collect } from '../file/test-helpers.ts';
import { stdoutSink } from './sink.ts';
import { stdinSource } from './source.ts';
import { stdinSourceSpec, stdoutSinkSpec } from './spec.ts';

describe('stdin source', () => {
  it('decodes a byte stream split anywhere, with stdin positions, bad lines to the dlq', async () => {
    const input = Buffer.from('{"a":1}\n{"a":2\n{"a":3}\r\n');
    const stream = Readable.from([input.subarray(0, 3), input.subarray(3, 11), input.subarray(11)]);
    const out = collect();
    const dead = collect<DeadLetter>();
    const src = stdinSource({ format: 'jsonl', stream });
    const p = new Pipeline('t');
    p.from(src, { name: 'in' }).to(out);
    p.dlq(dead);
    await p.run().done;
    assert.deepEqual(out.records(), [{ a: 1 }, { a: 3 }]);
    const [letter] = dead.records();
    assert.deepEqual(letter?.position, { stream: 'stdin', line: 2, offset: 8 });
    assert.match(letter?.error.message ?? '', /^line 2 \(byte 8\): invalid JSON/);
    assert.deepEqual(src.progress(), { done: input.length, unit: 'bytes' });
    assert.deepEqual(src.position(), { stream: 'stdin', line: 3, offset: input.length });
  });

  it('reads CSV (gzip-compressed when asked) with typed columns, bad rows to the dlq', async () => {
    const input = gzipSync('id,qty\n1,2\n2,x\n3,4\n');
    const stream = Readable.from([input.subarray(0, 5), input.subarray(5)]);
    const out = collect();
    const dead = collect<DeadLetter>();
    const p = new Pipeline('t');
    p.from(stdinSource({ format: 'csv', compression: 'gzip', stream, types: { id: 'int', qty: 'int' } }), {
      name: 'in',
    }).to(out);
    p.dlq(dead);
    await p.run().done;
    assert.deepEqual(out.records(), [
      { id: 1, qty: 2 },
      { id: 3, qty: 4 },
    ]);
    assert.deepEqual(dead.records()[0]?.position, { stream: 'stdin', line: 3, offset: 11 });
    assert.equal(dead.records()[0]?.record, '2,x');
  });

  it('ends a wait for input on a graceful stop, keeping what was read', async () => {
    const stream = new PassThrough();
    const out = collect();
    const run = new Pipeline('t')
      .from(stdinSource({ format: 'lines', stream }))
      .to(out)
      .run();
    stream.write('one\ntwo\npartial');
    for (let i = 0; i < 100 && out.records().length < 2; i++) await new Promise((r) => setImmediate(r));
    const summary = await run.stop();
    assert.equal(summary.state, 'succeeded');
    assert.deepEqual(out.records(), ['one', 'two']);
  });

  it('ends a wait for input on cancel', async () => {
    const stream = new PassThrough();
    const run = new Pipeline('t')
      .from(stdinSource({ format: 'lines', stream }))
      .to(collect())
      .run();
    await new Promise((r) => setImmediate(r));
    const summary = await run.stop({ drain: false });
    assert.equal(summary.state, 'cancelled');
  });

  it('fails with what it was doing when the stream errors', async () => {
    const stream = new Readable({
      read() {
        this.destroy(new Error('EIO: i/o error'));
      },
    });
    const run = new Pipeline('t')
      .from(stdinSource({ format: 'lines', stream }))
      .to(collect())
      .run();
    await assert.rejects(run.done, /reading standard input: EIO: i\/o error/);
  });
});

/** A writable stream that keeps each chunk written to it, as a string. */
function recordingStream(): { chunks: string[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { chunks, stream };
}

describe('stdout sink', () => {
  it('writes one chunk per batch', async () => {
    const { chunks, stream } = recordingStream();
    await new Pipeline('t')
      .from(arraySource([[{ a: 1 }, { b: 2n }], [{ c: 'x' }]]))
      .to(stdoutSink({ format: 'jsonl', stream }))
      .run().done;
    assert.deepEqual(chunks, ['{"a":1}\n{"b":"2"}\n', '{"c":"x"}\n']);
  });

  it('writes CSV with a header from the first record', async () => {
    const { chunks, stream } = recordingStream();
    await new Pipeline('t')
      .from(arraySource([[{ a: 1, b: 'x,y' }], [{ a: 2, b: '' }]]))
      .to(stdoutSink({ format: 'csv', stream }))
      .run().done;
    assert.deepEqual(chunks, ['a,b\n1,"x,y"\n', '2,\n']);
  });

  it('stops the run with a reader-gone cancellation on EPIPE', async () => {
    let writes = 0;
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        writes++;
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const sink = stdoutSink({ format: 'lines', stream });
    const run = new Pipeline('t')
      .from(arraySource([['a'], ['b'], ['c']]))
      .to(sink)
      .run();
    await assert.rejects(run.done, (err: Error & { code?: string; context?: Record<string, unknown> }) => {
      assert.equal(err.code, 'SLUICE_CANCELLED');
      assert.equal(err.context?.reason, 'reader-gone');
      assert.match(err.message, /closed by its reader \(EPIPE/);
      return true;
    });
    assert.equal(writes, 1);
    assert.equal(sink.readerGone, true);
  });

  it('fails with the cause on another write error', async () => {
    const stream = new Writable({
      write(_c, _e, cb) {
        cb(new Error('ENOSPC: no space left'));
      },
    });
    const run = new Pipeline('t')
      .from(arraySource([['a']]))
      .to(stdoutSink({ format: 'lines', stream }))
      .run();
    await assert.rejects(run.done, /writing standard output: ENOSPC/);
  });

  it('does not crash the process when a real pipe reader goes away (`| head`)', async () => {
    const generate = new URL('../generate/source.ts', import.meta.url).href;
    const pipeline = new URL('../../pipeline.ts', import.meta.url).href;
    const sink = new URL('./sink.ts', import.meta.url).href;
    const script = `
      import { generateSource } from '${generate}';
      import { Pipeline } from '${pipeline}';
      import { stdoutSink } from '${sink}';
      try {
        await new Pipeline('t').from(generateSource({ batchSize: 100 })).to(stdoutSink({ format: 'jsonl' })).run().done;
        process.exitCode = 3;
      } catch (err) {
        process.stderr.write(err.code + ' ' + err.context?.reason + '\\n');
        process.exitCode = err.context?.reason === 'reader-gone' ? 0 : 4;
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Read the first line, then close the pipe like `head -n 1`.
    const first = await new Promise<string>((resolve) => {
      let buf = '';
      child.stdout.on('data', (d) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          child.stdout.destroy();
          resolve(buf.slice(0, nl));
        }
      });
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(JSON.parse(first).id, 0);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /SLUICE_CANCELLED reader-gone/);
  });
});

describe('stdio specs', () => {
  it('fills defaults and rejects unknown fields', () => {
    assert.deepEqual(stdoutSinkSpec.config.parse({}), { format: 'jsonl' });
    assert.equal(stdoutSinkSpec.config.safeParse({ format: 'xml' }).success, false);
    assert.equal(stdoutSinkSpec.config.safeParse({ format: 'jsonl', delimiter: ';' }).success, false);
    assert.equal(stdoutSinkSpec.config.safeParse({ format: 'csv', delimiter: ';' }).success, true);
    assert.equal(stdinSourceSpec.config.parse({ format: 'lines' }).batchSize, 1024);
    assert.equal(stdinSourceSpec.config.safeParse({ format: 'lines', path: 'x' }).success, false);
    assert.equal(stdinSourceSpec.config.safeParse({}).success, false);
  });
});
