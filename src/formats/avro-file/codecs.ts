/**
 * The block codecs of Avro object container files: `null`, `deflate` (raw deflate, RFC 1951),
 * `snappy` (a raw snappy block followed by the big-endian CRC-32 of the uncompressed bytes) and
 * `zstandard`. `bzip2` and `xz` are in the spec but rare; they are refused with a clear error.
 * Node's zlib has deflate, zstd and CRC-32; snappy is the native `snappy` package the file
 * compression already uses, loaded on first use.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { crc32, deflateRawSync, inflateRawSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';

const require = createRequire(import.meta.url);
interface Snappy {
  compressSync(b: Uint8Array): Buffer;
  uncompressSync(b: Uint8Array, o?: { asBuffer?: boolean }): Buffer | string;
}
let snappyModule: Snappy | undefined;
const snappy = (): Snappy => {
  snappyModule ??= require('snappy') as Snappy;
  return snappyModule;
};

/** The codecs Sluice reads and writes, by their names in the header's `avro.codec`. */
export const AVRO_CODECS = ['null', 'deflate', 'snappy', 'zstandard'] as const;

/** One of {@link AVRO_CODECS}. */
export type AvroCodec = (typeof AVRO_CODECS)[number];

/** True when `name` is a codec Sluice can read. */
export function isAvroCodec(name: string): name is AvroCodec {
  return (AVRO_CODECS as readonly string[]).includes(name);
}

/** The error for a codec a file names that Sluice cannot read. */
export function unsupportedCodec(name: string): Error {
  return new Error(
    `the file's blocks use codec \`${name}\`, which Sluice does not read; use ${AVRO_CODECS.map((c) => `\`${c}\``).join(', ')}`,
  );
}

/** The uncompressed bytes of one block's data; throws an Error saying why they do not decompress. */
export function decompressBlock(codec: AvroCodec, data: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return data;
    case 'deflate':
      return inflateRawSync(data);
    case 'zstandard':
      return zstdDecompressSync(data);
    case 'snappy': {
      if (data.length < 4) throw new Error('a snappy block shorter than its 4-byte CRC');
      const out = snappy().uncompressSync(data.subarray(0, data.length - 4), { asBuffer: true }) as Buffer;
      const want = data.readUInt32BE(data.length - 4);
      if (crc32(out) !== want) throw new Error('the snappy block fails its CRC-32 check');
      return out;
    }
  }
}

/** The compressed bytes of one block's data. */
export function compressBlock(codec: AvroCodec, data: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return data;
    case 'deflate':
      return deflateRawSync(data);
    case 'zstandard':
      return zstdCompressSync(data);
    case 'snappy': {
      const c = snappy().compressSync(data);
      const out = Buffer.allocUnsafe(c.length + 4);
      c.copy(out);
      out.writeUInt32BE(crc32(data), c.length);
      return out;
    }
  }
}
