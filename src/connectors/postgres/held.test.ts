/** `HeldChunks`: in memory up to its limit, in a temporary file past it, in order either way. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { HeldChunks } from './held.ts';

test('chunks past the memory limit are spilled and read back in order; restore undoes a half resend', async () => {
  const held = new HeldChunks<string>(10);
  const bytes = (s: string) => Buffer.from(s);
  await held.add({ payload: bytes('aaaa\n'), count: 1 }); // 5 bytes: memory
  await held.add({ rows: ['x', 'y'], count: 2 }); // rows: always memory
  await held.add({ payload: bytes('bbbbbb\n'), count: 1 }); // would exceed 10: file
  await held.add({ payload: bytes('cc\n'), count: 1 }); // file too (after a spill, order is kept by entries)
  assert.equal(held.rows, 5);
  assert.equal(held.spilledBytes, 7);

  const taken = held.take();
  assert.equal(held.rows, 0);
  const loaded = [];
  for (const e of taken) loaded.push(await held.load(e));
  assert.deepEqual(
    loaded.map((c) => c.payload?.toString() ?? c.rows),
    ['aaaa\n', ['x', 'y'], 'bbbbbb\n', 'cc\n'],
  );
  // A resend that re-adds the first two, then fails: everything is back, spilled bytes readable.
  await held.add(loaded[0] as never);
  await held.add(loaded[1] as never);
  held.restore(taken);
  assert.equal(held.rows, 5);
  const again = [];
  for (const e of held.take()) again.push(await held.load(e));
  assert.deepEqual(
    again.map((c) => c.payload?.toString() ?? c.rows),
    ['aaaa\n', ['x', 'y'], 'bbbbbb\n', 'cc\n'],
  );

  held.clear();
  assert.equal(held.spilledBytes, 0);
  await held.add({ payload: bytes('0123456789abc\n'), count: 1 });
  const dir = (held as unknown as { dir: string }).dir;
  assert.ok(existsSync(dir));
  const [only] = held.take();
  assert.equal((await held.load(only as never)).payload?.toString(), '0123456789abc\n');
  await held.close();
  assert.equal(existsSync(dir), false, 'close deletes the temporary file');
});
