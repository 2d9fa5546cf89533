import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { SluiceError } from '../../core/errors.ts';
import { crc32c, xxh32 } from './checksums.ts';
import { type Codec, codecFromMagic, codecFromPath, detectCodec } from './codecs.ts';
import { compress, decompress } from './stream.ts';

const require = createRequire(import.meta.url);
const CODECS = ['gzip', 'zstd', 'brotli', 'snappy', 'lz4'] as const;
const EXT: Record<(typeof CODECS)[number], string> = {
  gzip: 'gz',
  zstd: 'zst',
  brotli: 'br',
  snappy: 'sz',
  lz4: 'lz4',
};

async function* chunks(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** 3 MB of CSV-like text with some incompressible noise. */
function sample(): Buffer {
  const rows: string[] = [];
  let x = 7;
  for (let i = 0; i < 60_000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    rows.push(`${i},${x.toString(36)},status_${i % 5},${(x % 10000) / 100}\n`);
  }
  return Buffer.from(rows.join(''));
}

const data = sample();

async function expectFailure(p: Promise<unknown>, check: (e: SluiceError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SluiceError, String(e));
    check(e);
    return true;
  });
}

describe('compression: round trips', () => {
  for (const codec of CODECS) {
    it(`${codec}: compress then decompress gives the input back, whatever the chunking`, async () => {
      const packed = await collect(compress(chunks(data, 100_000), { codec }));
      assert.ok(packed.length < data.length / 2, `${codec} compressed ${data.length} to ${packed.length}`);
      for (const size of [1 << 20, 65_537, 4093]) {
        const back = await collect(decompress(chunks(packed, size), { path: `in.csv.${EXT[codec]}` }));
        assert.ok(back.equals(data), `${codec} with ${size}-byte chunks`);
      }
      assert.deepEqual(
        await collect(
          decompress(chunks(await collect(compress(chunks(new Uint8Array(0), 1), { codec })), 1), { codec }),
        ),
        Buffer.alloc(0),
      );
    });
  }

  it('passes bytes through with codec none', async () => {
    const back = await collect(decompress(chunks(data, 70_000), { path: 'plain.csv' }));
    assert.ok(back.equals(data));
  });

  it('uses a usable brotli quality by default (4, not 11)', async () => {
    // One write below the 64 KiB slice size, so the stream output equals the one-shot output.
    const small = data.subarray(0, 60_000);
    const packed = await collect(compress(chunks(small, 1 << 20), { codec: 'brotli' }));
    const q = (quality: number) =>
      zlib.brotliCompressSync(small, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality } });
    assert.ok(packed.equals(q(4)));
    assert.ok(!packed.equals(q(11)));
  });
});

describe('compression: concatenated streams', () => {
  for (const codec of ['gzip', 'zstd', 'snappy', 'lz4'] as const) {
    it(`${codec}: reads every stream of several joined together, split at any byte`, async () => {
      const parts = ['first,1\n', 'second,2\n', 'third,3\n'];
      const joined = Buffer.concat(
        await Promise.all(parts.map((p) => collect(compress(chunks(Buffer.from(p), 64), { codec })))),
      );
      for (const size of [1, 3, 7, joined.length]) {
        const got = await collect(decompress(chunks(joined, size), { codec }));
        assert.equal(got.toString(), parts.join(''), `${codec}, chunks of ${size}`);
      }
    });
  }

  it('zstd: reads a frame followed by a skippable frame and another frame', async () => {
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const joined = Buffer.concat([zlib.zstdCompressSync('a\n'), skippable, zlib.zstdCompressSync('b\n')]);
    assert.equal((await collect(decompress(chunks(joined, 5), { codec: 'zstd' }))).toString(), 'a\nb\n');
  });

  it('brotli: refuses data after the end of the stream instead of dropping it', async () => {
    const one = zlib.brotliCompressSync('hello');
    const joined = Buffer.concat([one, zlib.brotliCompressSync('world')]);
    await assert.rejects(collect(decompress(chunks(joined, 4), { codec: 'brotli' })), (err: SluiceError) => {
      assert.equal(err.code, 'SLUICE_STAGE');
      assert.equal(err.context.offset, one.length);
      assert.match(
        err.message,
        new RegExp(`unexpected data after the end of the brotli stream at compressed byte ${one.length}`),
      );
      return true;
    });
  });
});

describe('compression: detection', () => {
  it('by extension', () => {
    assert.deepEqual(
      ['a.csv.gz', 'a.GZ', 'a.zst', 'a.zstd', 'a.br', 'a.sz', 'b.lz4', 'a.csv', 'dir.gz/a', 'noext'].map(
        codecFromPath,
      ),
      ['gzip', 'gzip', 'zstd', 'zstd', 'brotli', 'snappy', 'lz4', undefined, undefined, undefined],
    );
  });

  it('by magic bytes, which win over a wrong extension', async () => {
    for (const codec of CODECS) {
      const packed = await collect(compress(chunks(Buffer.from('x'), 1), { codec }));
      assert.equal(codecFromMagic(packed), codec === 'brotli' ? undefined : codec, codec);
      if (codec === 'brotli') continue;
      const back = await collect(decompress(chunks(packed, 1), { path: 'mislabelled.csv' }));
      assert.equal(back.toString(), 'x', codec);
    }
    assert.equal(detectCodec('a.br', Buffer.from('whatever')), 'brotli');
    assert.equal(detectCodec(undefined, Buffer.from('id,name\n')), 'none');
  });
});

describe('compression: corrupt and truncated input fail with the compressed byte offset', () => {
  for (const codec of CODECS) {
    it(`${codec}: truncated`, async () => {
      const packed = await collect(compress(chunks(data, 1 << 20), { codec }));
      const cut = packed.subarray(0, packed.length - 7);
      await expectFailure(
        collect(decompress(chunks(cut, 10_000), { codec, path: `x.${EXT[codec]}` })),
        (e) => {
          assert.equal(e.context.offset, cut.length);
          assert.equal(e.context.codec, codec);
          assert.equal(e.context.file, `x.${EXT[codec]}`);
          assert.match(e.message, /truncated/);
        },
      );
    });

    it(`${codec}: corrupt`, async () => {
      const packed = await collect(compress(chunks(data, 1 << 20), { codec }));
      const bad = Buffer.from(packed);
      const at = 200;
      for (let i = at; i < at + 16; i++) bad[i]! ^= 0x5a;
      await expectFailure(collect(decompress(chunks(bad, 10_000), { codec })), (e) => {
        const offset = e.context.offset as number;
        assert.equal(e.context.codec, codec);
        assert.match(e.message, /corrupt/);
        // The error names a place at or after the damage and not past the input.
        assert.ok(offset <= bad.length, `offset ${offset}`);
        if (codec === 'gzip' || codec === 'zstd' || codec === 'brotli') {
          assert.ok((e.context.offsetEnd as number) > at, `range ends at ${String(e.context.offsetEnd)}`);
        }
      });
    });
  }

  it('names the exact chunk of a snappy stream with a bad checksum', async () => {
    const packed = await collect(compress(chunks(data, 1 << 20), { codec: 'snappy' }));
    // The second chunk header starts after the 10-byte stream id and the first chunk.
    const firstLen = packed.readUIntLE(11, 3);
    const second = 10 + 4 + firstLen;
    const bad = Buffer.from(packed);
    bad[second + 4]! ^= 1; // its CRC
    await expectFailure(collect(decompress(chunks(bad, 999), { codec: 'snappy' })), (e) => {
      assert.equal(e.context.offset, second);
      assert.match(e.message, /CRC-32C mismatch/);
    });
  });

  it('rejects data that is not in the declared format at offset 0', async () => {
    for (const codec of ['gzip', 'zstd', 'snappy', 'lz4'] as Codec[]) {
      await expectFailure(collect(decompress(chunks(Buffer.from('id,name\n1,ada\n'), 4), { codec })), (e) => {
        assert.equal(e.context.offset, 0, codec);
      });
    }
  });
});

describe('compression: interoperability', () => {
  it('checksums match their published test vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(xxh32(Buffer.from('')), 0x02cc5d05);
    assert.equal(xxh32(Buffer.from('Nobody inspects the spammish repetition')), 0xe2293b2f);
  });

  it('snappy: reads the snappy package framed output and writes what it reads', async () => {
    const snappy = require('snappy') as {
      Compressor: new () => { update(b: Uint8Array): Buffer; finish(): Promise<Buffer> };
      Decompressor: new () => { update(b: Uint8Array): Buffer; finish(): Promise<Buffer> };
    };
    const c = new snappy.Compressor();
    const theirs = Buffer.concat([c.update(data), await c.finish()]);
    assert.ok((await collect(decompress(chunks(theirs, 5000)))).equals(data));
    const ours = await collect(compress(chunks(data, 77_777), { codec: 'snappy' }));
    const d = new snappy.Decompressor();
    assert.ok(Buffer.concat([d.update(ours), await d.finish()]).equals(data));
  });

  const hasLz4 = spawnSync('lz4', ['--version']).status === 0;
  it('lz4: reads the lz4 CLI with linked blocks, block and content checksums; the CLI reads ours', {
    skip: !hasLz4 && 'lz4 CLI not installed',
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lz4-'));
    const plain = join(dir, 'd.csv');
    writeFileSync(plain, data);
    for (const flags of [
      ['-BD'],
      ['-BX', '-B4'],
      ['--content-size', '-B7'],
      ['-9', '-BD', '--no-frame-crc'],
    ]) {
      const out = join(dir, `d.${flags.join('')}.lz4`);
      assert.equal(spawnSync('lz4', ['-q', '-f', ...flags, plain, out]).status, 0);
      const back = await collect(decompress(chunks(readFileSync(out), 12_345)));
      assert.ok(back.equals(data), `lz4 ${flags.join(' ')}`);
    }
    const ours = join(dir, 'ours.lz4');
    writeFileSync(ours, await collect(compress(chunks(data, 300_000), { codec: 'lz4' })));
    const r = spawnSync('lz4', ['-d', '-c', ours], { maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr?.toString());
    assert.ok(r.stdout.equals(data));
  });

  const hasZstd = spawnSync('zstd', ['--version']).status === 0;
  it('zstd: the CLI reads ours', { skip: !hasZstd && 'zstd CLI not installed' }, async () => {
    const packed = await collect(compress(chunks(data, 300_000), { codec: 'zstd' }));
    const r = spawnSync('zstd', ['-d', '-c'], { input: packed, maxBuffer: 64 << 20 });
    assert.equal(r.status, 0);
    assert.ok(r.stdout.equals(data));
  });
});

describe('compression: cancellation', () => {
  it('stops when the signal aborts', async () => {
    const ac = new AbortController();
    const packed = await collect(compress(chunks(data, 1 << 20), { codec: 'gzip' }));
    const it = decompress(chunks(packed, 1000), { codec: 'gzip', signal: ac.signal });
    await it.next();
    ac.abort();
    await assert.rejects(
      collect(it),
      (e: unknown) => e instanceof SluiceError && e.code === 'SLUICE_CANCELLED',
    );
  });
});
