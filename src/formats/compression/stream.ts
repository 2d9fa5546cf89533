/**
 * Streaming compression and decompression over async iterables of bytes, in bounded memory.
 * gzip, zstd and brotli run in `node:zlib` (off the main thread, in libuv's pool); snappy and LZ4
 * frames are parsed here around the native block codecs (see framed.ts).
 */
import { Buffer } from 'node:buffer';
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { cancelledError, ErrorCode, SluiceError } from '../../core/errors.ts';
import { type Codec, detectCodec, MAGIC_BYTES } from './codecs.ts';
import {
  Lz4FrameDecoder,
  Lz4FrameEncoder,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  type SyncCodec,
} from './framed.ts';

/** Options of {@link decompress}. */
export interface DecompressOptions {
  /** The codec, or `auto` (default): magic bytes first, then the extension of `path`. */
  readonly codec?: Codec | 'auto';
  /** File name, for detection by extension and for error context. */
  readonly path?: string;
  /** Cancels the stream: iteration throws a cancellation error. */
  readonly signal?: AbortSignal;
  /**
   * True when each input chunk is valid only until the next one is asked for (a reader that
   * reuses its buffers). Uncompressed input is then passed on as it is, so the consumer must
   * copy what it keeps too; compressed input is copied before a codec sees it, as codecs may
   * hold on to it.
   */
  readonly borrowed?: boolean;
}

/** Options of {@link compress}. */
export interface CompressOptions {
  readonly codec: Codec;
  /**
   * Level: gzip 1–9 (default 6), zstd 1–22 (default 3), brotli quality 0–11 (default 4 — the
   * library default 11 runs at about 1 MB/s). Ignored by snappy and lz4.
   */
  readonly level?: number;
  readonly signal?: AbortSignal;
}

/** Compressed bytes are fed to zlib in slices this big, so an error is placed within one slice. */
const SLICE = 64 * 1024;

function toU8(source: AsyncIterable<Uint8Array | string>): AsyncIterable<Uint8Array> {
  return (async function* () {
    for await (const c of source) yield typeof c === 'string' ? Buffer.from(c) : c;
  })();
}

/**
 * Decompresses a byte stream. The codec is given or detected (magic bytes, else `path`'s
 * extension, else none). Output chunks are yielded as they are produced, with backpressure: the
 * input is read only as fast as the output is consumed.
 *
 * A corrupt or truncated input throws a `SluiceError` (`SLUICE_STAGE`) whose context has `codec`
 * and `offset`, the compressed byte offset where decoding failed (for gzip/zstd/brotli: the start
 * of the 64 KiB slice that failed, with `offsetEnd` its end; for snappy and lz4: the exact chunk
 * or block; for truncation: the input's length).
 *
 * @example
 * for await (const chunk of decompress(createReadStream('in.csv.gz'), { path: 'in.csv.gz' })) decoder.write(chunk, sink);
 */
export async function* decompress(
  source: AsyncIterable<Uint8Array | string>,
  options: DecompressOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const it = toU8(source)[Symbol.asyncIterator]();
  let codec = options.codec ?? 'auto';
  const head: Uint8Array[] = [];
  if (codec === 'auto') {
    // Read just enough to see the magic number.
    let n = 0;
    while (n < MAGIC_BYTES) {
      const r = await it.next();
      if (r.done) break;
      head.push(options.borrowed === true ? Buffer.from(r.value) : r.value);
      n += r.value.length;
    }
    codec = detectCodec(options.path, Buffer.concat(head));
  }
  const copy = options.borrowed === true && codec !== 'none';
  const input = (async function* () {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield copy ? Buffer.from(r.value) : r.value;
    }
  })();
  const context = options.path === undefined ? {} : { file: options.path };
  switch (codec) {
    case 'none':
      for await (const c of input) {
        options.signal?.throwIfAborted();
        yield c;
      }
      return;
    case 'snappy':
      yield* runSync(new SnappyFrameDecoder(), input, options.signal, context);
      return;
    case 'lz4':
      yield* runSync(new Lz4FrameDecoder(), input, options.signal, context);
      return;
    case 'gzip':
      yield* runZlib(() => zlib.createGunzip(), 'gzip', input, options.signal, context, true);
      return;
    case 'zstd':
      yield* runZlib(
        () => zlib.createZstdDecompress(),
        'zstd',
        input,
        options.signal,
        context,
        true,
        'continue',
      );
      return;
    case 'brotli':
      yield* runZlib(() => zlib.createBrotliDecompress(), 'brotli', input, options.signal, context, true);
      return;
    default:
      throw new SluiceError(
        ErrorCode.CONFIG,
        `unknown codec \`${String(codec)}\`; use gzip, zstd, brotli, snappy, lz4 or none`,
      );
  }
}

/**
 * Compresses a byte stream with `codec`, yielding compressed chunks as they are produced.
 *
 * @example
 * await pipeline(compress(encodedChunks(), { codec: 'zstd' }), createWriteStream('out.jsonl.zst'));
 */
export async function* compress(
  source: AsyncIterable<Uint8Array | string>,
  options: CompressOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const input = toU8(source);
  const { codec, level, signal } = options;
  switch (codec) {
    case 'none':
      for await (const c of input) {
        signal?.throwIfAborted();
        yield c;
      }
      return;
    case 'snappy':
      yield* runSync(new SnappyFrameEncoder(), input, signal, {});
      return;
    case 'lz4':
      yield* runSync(new Lz4FrameEncoder(), input, signal, {});
      return;
    case 'gzip':
      yield* runZlib(() => zlib.createGzip({ level: level ?? 6 }), 'gzip', input, signal, {}, false);
      return;
    case 'zstd':
      yield* runZlib(
        // The content checksum lets a reader detect corruption that still decodes.
        () =>
          zlib.createZstdCompress({
            params: {
              [zlib.constants.ZSTD_c_compressionLevel]: level ?? 3,
              [zlib.constants.ZSTD_c_checksumFlag]: 1,
            },
          }),
        'zstd',
        input,
        signal,
        {},
        false,
      );
      return;
    case 'brotli':
      yield* runZlib(
        () => zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level ?? 4 } }),
        'brotli',
        input,
        signal,
        {},
        false,
      );
      return;
    default:
      throw new SluiceError(
        ErrorCode.CONFIG,
        `unknown codec \`${String(codec)}\`; use gzip, zstd, brotli, snappy, lz4 or none`,
      );
  }
}

async function* runSync(
  codec: SyncCodec,
  input: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  context: Record<string, unknown>,
): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for await (const c of input) {
      if (signal?.aborted) throw cancelledError(signal.reason);
      for (const o of codec.push(c)) yield o;
    }
    for (const o of codec.end()) yield o;
  } catch (err) {
    if (err instanceof SluiceError) Object.assign(err.context, context);
    throw err;
  }
}

/**
 * What a decompressor does when its stream ends before its input does: `continue` with a fresh
 * decompressor (zstd: a file may hold several frames, e.g. `cat a.zst b.zst`, and Node's zstd
 * stream stops after the first), or `reject` the rest as trailing data (brotli, whose streams do
 * not concatenate). Never silently drop it. gzip members are handled inside Node's gunzip.
 */
type AfterEnd = 'continue' | 'reject';

/**
 * Drives a zlib Transform one slice at a time: write a slice, wait until zlib has consumed it,
 * yield what it produced. Waiting per slice is what gives backpressure and lets an error be
 * attributed to the slice that caused it. `bytesWritten` (the input bytes the engine consumed)
 * says where a stream that ended inside a slice stopped, so the rest of the slice is not lost.
 */
async function* runZlib(
  make: () => Transform,
  name: string,
  input: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  context: Record<string, unknown>,
  decoding: boolean,
  afterEnd: AfterEnd = 'reject',
): AsyncGenerator<Uint8Array, void, undefined> {
  let out: Buffer[] = [];
  let failure: Error | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  let t = make();
  /** Offset in the whole input of the current stream's first byte. */
  let streamStart = 0;
  const attach = (x: Transform) => {
    x.on('data', (b: Buffer) => out.push(b));
    x.on('error', (e: Error) => {
      failure = e;
      wake?.();
    });
    x.on('end', () => {
      ended = true;
      wake?.();
    });
  };
  attach(t);
  const settle = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
    });
  let offset = 0;
  const fail = (e: Error, start: number, end: number, atEnd: boolean): SluiceError => {
    const what = decoding ? 'decompressing' : 'compressing';
    if (!decoding)
      return new SluiceError(
        ErrorCode.STAGE,
        `${what} ${name}: ${e.message}`,
        { component: 'compression', codec: name, ...context },
        { cause: e },
      );
    const msg = atEnd
      ? `${what} ${name}: input ends at compressed byte ${end} before the end of the stream (${e.message}); the file is truncated`
      : `${what} ${name}: corrupt input in compressed bytes ${start}–${end} (${e.message})`;
    return new SluiceError(
      ErrorCode.STAGE,
      msg,
      { component: 'compression', codec: name, offset: atEnd ? end : start, offsetEnd: end, ...context },
      { cause: e },
    );
  };
  /** Bytes `[at, …)` of the input follow a finished stream: start the next one or refuse them. */
  const next = (at: number): void => {
    if (afterEnd === 'reject') {
      throw new SluiceError(
        ErrorCode.STAGE,
        `decompressing ${name}: unexpected data after the end of the ${name} stream at compressed byte ${at}; the file is damaged or is several ${name} files joined together`,
        { component: 'compression', codec: name, offset: at, ...context },
      );
    }
    t.destroy();
    t = make();
    attach(t);
    ended = false;
    streamStart = at;
  };
  try {
    for await (const chunk of input) {
      for (let i = 0; i < chunk.length; ) {
        if (signal?.aborted) throw cancelledError(signal.reason);
        const slice = chunk.subarray(i, Math.min(i + SLICE, chunk.length));
        const start = offset;
        if (ended) next(start);
        const done = settle();
        t.write(slice, () => wake?.());
        await done;
        if (failure !== undefined) throw fail(failure, start, start + slice.length, false);
        // A stream that ended inside this slice consumed only part of it: go on after that part.
        const used = ended
          ? Math.min(slice.length, streamStart + (t as unknown as Counted).bytesWritten - start)
          : slice.length;
        offset = start + used;
        i += used;
        if (used === 0 && ended) next(start);
        if (out.length > 0) {
          const o = out;
          out = [];
          yield* o;
        }
      }
    }
    if (!ended) {
      const done = settle();
      t.end();
      await done;
      // 'end' may come before the last 'data' events are drained into `out`; both are synchronous here.
    }
    if (failure !== undefined) throw fail(failure, offset, offset, true);
    yield* out;
    out = [];
  } finally {
    t.destroy();
  }
}

/** A zlib stream's count of input bytes its engine consumed. */
interface Counted {
  readonly bytesWritten: number;
}
