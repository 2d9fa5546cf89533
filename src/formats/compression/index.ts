/**
 * Compression codecs for files and streams: gzip, zstd, brotli, snappy (framed) and lz4 (frame),
 * chosen by extension or magic bytes, always streamed.
 *
 * @example
 * import { decompress } from './index.ts';
 * for await (const bytes of decompress(createReadStream(path), { path })) decoder.write(bytes, sink);
 */
export { crc32c, xxh32 } from './checksums.ts';
export {
  CODECS,
  type Codec,
  codecFromMagic,
  codecFromPath,
  detectCodec,
  EXTENSION_OF,
  MAGIC_BYTES,
} from './codecs.ts';
export {
  Lz4FrameDecoder,
  Lz4FrameEncoder,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  type SyncCodec,
} from './framed.ts';
export { type CompressOptions, compress, type DecompressOptions, decompress } from './stream.ts';
