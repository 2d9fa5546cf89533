/**
 * `ByteIndex.scan` lists exactly the positions `Buffer#indexOf` finds (oracle), with its
 * WebAssembly SIMD scanner and with the fallback used where WebAssembly is missing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteIndex, scanSegment } from './byte-index.ts';

/** The positions of `byte` in `[from, end)` of `b`, then `end`, by `indexOf`. */
function expected(b: Buffer, byte: number, from: number, end: number): number[] {
  const out: number[] = [];
  for (let i = b.indexOf(byte, from); i !== -1 && i < end; i = b.indexOf(byte, i + 1)) out.push(i);
  return [...out, end];
}

function check(idx: ByteIndex, b: Buffer, byte: number, from: number, segment: number): void {
  const end = idx.scan(b, from);
  assert.equal(end, Math.min(from + segment, b.length));
  const want = expected(b, byte, from, end);
  assert.deepEqual([...idx.pos.subarray(0, want.length)], want);
}

const input = fc
  .array(fc.oneof(fc.constantFrom(44, 44, 10, 34, 0, 45, 43), fc.integer({ min: 0, max: 255 })), {
    maxLength: 200,
  })
  .map((a) => Buffer.from(a));

describe('ByteIndex', () => {
  it('lists the positions of its byte, then the end of what it scanned', () => {
    const idx = new ByteIndex(44);
    const b = Buffer.from('a,b,,c');
    assert.equal(idx.scan(b, 1), 6);
    assert.deepEqual([...idx.pos.subarray(0, 4)], [1, 3, 4, 6]);
    assert.equal(idx.scan(b, 6), 6);
    assert.equal(idx.pos[0], 6);
  });

  for (const wasm of [true, false]) {
    it(`finds what indexOf finds, from any start, in segments (property${wasm ? '' : ', without WebAssembly'})`, () => {
      const g = globalThis as { WebAssembly?: unknown };
      const saved = g.WebAssembly;
      if (!wasm) delete g.WebAssembly;
      let indexes: ByteIndex[];
      try {
        indexes = [16, 48, 128 * 1024].flatMap((seg) =>
          [44, 0, 0xff].map((byte) => new ByteIndex(byte, seg)),
        );
      } finally {
        g.WebAssembly = saved;
      }
      const segments = [16, 48, 128 * 1024];
      fc.assert(
        fc.property(input, fc.nat(), (b, start) => {
          for (let k = 0; k < indexes.length; k++) {
            const seg = segments[Math.floor(k / 3)]!;
            const byte = [44, 0, 0xff][k % 3]!;
            const from = b.length === 0 ? 0 : start % (b.length + 1);
            check(indexes[k]!, b, byte, from, seg);
          }
        }),
        { numRuns: 1000 },
      );
    });
  }
});

describe('scanSegment', () => {
  it('is the smallest power of two from 4 KiB to 128 KiB covering the first buffer', () => {
    assert.equal(scanSegment(0), 4096);
    assert.equal(scanSegment(4096), 4096);
    assert.equal(scanSegment(4097), 8192);
    assert.equal(scanSegment(100_000), 131_072);
    assert.equal(scanSegment(1 << 20), 131_072);
  });

  it('a scanner sized for a small first buffer lists a later long one whole, scan by scan', () => {
    const buf = Buffer.from('ab,'.repeat(10_000));
    const idx = new ByteIndex(44, scanSegment(16));
    const found: number[] = [];
    for (let from = 0; from < buf.length; ) {
      const end = idx.scan(buf, from);
      for (let k = 0; idx.pos[k] !== end; k++) found.push(idx.pos[k] as number);
      from = end;
    }
    const expected: number[] = [];
    for (let i = buf.indexOf(44); i !== -1; i = buf.indexOf(44, i + 1)) expected.push(i);
    assert.deepEqual(found, expected);
  });
});
