import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { fileSink } from './sink.ts';
import { stageContext } from './test-helpers.ts';

const context = (checkpointing: boolean) => stageContext(checkpointing);

test('a brotli file output refuses checkpoints with a message that says what to use instead', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-br-'));
  try {
    const sink = fileSink({ path: join(dir, 'out.jsonl.br'), format: 'jsonl' });
    await assert.rejects(Promise.resolve(sink.open?.(context(true))), (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, ErrorCode.CONFIG);
      assert.match(err.message, /brotli output cannot be checkpointed.*write `\.zst` or `\.gz` instead/);
      return true;
    });
    await sink.close?.();
    assert.deepEqual(await readdir(dir), [], 'no temporary file is left behind');
    // Without checkpoints brotli is fine.
    const plain = fileSink({ path: join(dir, 'out.jsonl.br'), format: 'jsonl' });
    await plain.open?.(context(false));
    await plain.write({ kind: 'batch', records: [{ a: 1 }] });
    await plain.onSignal?.({ kind: 'barrier', id: 1 });
    await plain.write({ kind: 'batch', records: [{ a: 2 }] });
    await plain.finish?.();
    await plain.close?.();
    const { brotliDecompressSync } = await import('node:zlib');
    const { readFile } = await import('node:fs/promises');
    const text = brotliDecompressSync(await readFile(join(dir, 'out.jsonl.br'))).toString();
    assert.equal(text, '{"a":1}\n{"a":2}\n', 'a barrier without checkpoints must not end the brotli stream');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
