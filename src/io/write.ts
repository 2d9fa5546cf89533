/**
 * The output half of the byte connectors (file, stdout): records to bytes with a format's
 * encoder (records a CSV row cannot hold go to the dead-letter output), and bytes to a
 * destination through an optional streaming compressor, with backpressure.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { StageContext } from '../core/stage.ts';
import { type Codec, codecFromPath, compress } from '../formats/compression/index.ts';
import type { RecordEncoder } from '../formats/format.ts';
import type { FormatName } from '../formats/formats.ts';

/** Levels each codec accepts (`undefined`: the codec takes no level). */
const LEVELS: Readonly<Record<Codec, readonly [number, number] | undefined>> = {
  gzip: [1, 9],
  zstd: [1, 22],
  brotli: [0, 11],
  snappy: undefined,
  lz4: undefined,
  none: undefined,
};

/** An output's compression after resolving `auto` against the path. */
export interface OutputCompression {
  readonly codec: Codec;
  readonly level: number | undefined;
}

/**
 * Resolves an output's compression: `auto` (or nothing) picks the codec by `path`'s extension
 * (`none` for an unknown one); then checks `level` against the codec. Returns the problems as
 * sentences (empty when fine), so a config check can report them with the others.
 *
 * @example
 * outputCompression('out/a.csv.zst', 'auto', 19); // { codec: 'zstd', level: 19, problems: [] }
 */
export function outputCompression(
  path: string,
  compression: Codec | 'auto' | undefined,
  level: number | undefined,
): OutputCompression & { problems: string[] } {
  const codec =
    compression === undefined || compression === 'auto' ? (codecFromPath(path) ?? 'none') : compression;
  const problems: string[] = [];
  if (level !== undefined) {
    const range = LEVELS[codec];
    if (range === undefined) {
      problems.push(
        codec === 'none'
          ? `\`level\` needs a compressed output: \`${path}\` has no compressed extension (.gz, .zst, .br, .sz, .lz4) and \`compression\` names none`
          : `\`level\` does not apply to ${codec}; remove it`,
      );
    } else if (!Number.isInteger(level) || level < range[0] || level > range[1]) {
      problems.push(
        `\`level\` of ${codec} must be a whole number from ${range[0]} to ${range[1]}, got ${level}`,
      );
    }
  }
  return { codec, level, problems };
}

/** Why `record` cannot be a CSV row, or undefined when it can (a plain object or an array). */
function notARow(record: unknown): string | undefined {
  if (Array.isArray(record)) return undefined;
  if (record !== null && typeof record === 'object' && !(record instanceof Date)) return undefined;
  const what = record === null ? 'null' : record instanceof Date ? 'a Date' : `a ${typeof record}`;
  return `a CSV row must be an object (keyed by column) or an array, got ${what}; map it to an object first`;
}

/**
 * Encodes `records` with `encoder`. A record the format cannot hold goes to `ctx.deadLetter`
 * with a `SLUICE_RECORD` error and the others are written: for `csv`, one that is not an object
 * or an array (a string from a `lines` input, a number…) has no columns; for every format, one
 * the encoder rejects (nesting too deep, circular, an invalid `Date`…). Without `ctx` such a
 * record throws.
 */
export function encodeRecords(
  encoder: RecordEncoder<unknown>,
  format: FormatName,
  records: readonly unknown[],
  ctx: StageContext | undefined,
  meta?: readonly unknown[],
): Uint8Array | string {
  type Meta = Parameters<StageContext['deadLetter']>[2];
  let rows = records;
  // For CSV rows left out before encoding: the index in `records` of each row encoded.
  let from: number[] | undefined;
  if (format === 'csv') {
    let ok: unknown[] | undefined;
    for (let i = 0; i < records.length; i++) {
      const why = notARow(records[i]);
      if (why === undefined) {
        ok?.push(records[i]);
        from?.push(i);
        continue;
      }
      if (ok === undefined) {
        ok = records.slice(0, i);
        from = Array.from({ length: i }, (_, k) => k);
      }
      const error = new SluiceError(ErrorCode.RECORD, why, { component: 'csv' });
      if (ctx === undefined) throw error;
      ctx.deadLetter(records[i], error, meta?.[i] as Meta);
    }
    rows = ok ?? records;
  }
  if (ctx === undefined) return encoder.encode(rows);
  return encoder.encode(rows, (i, error) => {
    const at = from?.[i] ?? i;
    ctx.deadLetter(records[at], error, meta?.[at] as Meta);
  });
}

/** Where compressed (or plain) bytes go, in order, one awaited call at a time. */
export type WriteBytes = (bytes: Uint8Array) => Promise<void>;

/** A byte stream into a destination, compressed on the way; see {@link byteWriter}. */
export interface ByteWriter {
  /**
   * Hands `bytes` on. Resolves when the destination may take more: for a compressed output,
   * once the compressor took these bytes (the bytes before them are then written), so at most
   * one chunk is in flight. Rejects with the first failure of the compressor or the destination.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Ends the stream: flushes the compressor (its trailer) and resolves once everything is written. */
  end(): Promise<void>;
  /** Stops without flushing (a failed or cancelled run); never throws. */
  abort(): Promise<void>;
}

/**
 * A {@link ByteWriter} onto `out`, compressing with `codec` (`none`: bytes go straight through).
 *
 * @example
 * const w = byteWriter((b) => handle.write(b).then(() => {}), { codec: 'zstd', level: 3 });
 * await w.write(Buffer.from('a,b\n'));
 * await w.end();
 */
export function byteWriter(out: WriteBytes, compression: OutputCompression): ByteWriter {
  if (compression.codec === 'none') {
    return { write: out, end: async () => {}, abort: async () => {} };
  }
  const feed = new Feed();
  const stop = new AbortController();
  const options =
    compression.level === undefined
      ? { codec: compression.codec, signal: stop.signal }
      : { codec: compression.codec, level: compression.level, signal: stop.signal };
  const done = (async () => {
    for await (const bytes of compress(feed, options)) await out(bytes);
  })();
  // Observed here, so a failure before the next `write` is not an unhandled rejection.
  done.catch(() => {});
  return {
    async write(bytes) {
      if (bytes.length === 0) return;
      await Promise.race([feed.push(bytes), done]);
    },
    async end() {
      feed.end();
      await done;
    },
    async abort() {
      stop.abort();
      feed.end();
      await done.catch(() => {});
    },
  };
}

/**
 * A one-slot async iterable fed from outside: `push` resolves when the consumer has taken the
 * chunk. The consumer (a compressor) takes the next chunk only once it has finished with the
 * previous one, which bounds what is in flight to one chunk.
 */
class Feed implements AsyncIterable<Uint8Array> {
  private slot: { bytes: Uint8Array; taken: () => void } | undefined;
  private waiting: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  private ended = false;

  push(bytes: Uint8Array): Promise<void> {
    if (this.ended) return Promise.reject(new Error('write after end'));
    return new Promise((taken) => {
      const w = this.waiting;
      if (w !== undefined) {
        this.waiting = undefined;
        w({ value: bytes, done: false });
        taken();
      } else {
        this.slot = { bytes, taken };
      }
    });
  }

  end(): void {
    this.ended = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () =>
        new Promise<IteratorResult<Uint8Array>>((resolve) => {
          const s = this.slot;
          if (s !== undefined) {
            this.slot = undefined;
            s.taken();
            resolve({ value: s.bytes, done: false });
          } else if (this.ended) {
            resolve({ value: undefined, done: true });
          } else {
            this.waiting = resolve;
          }
        }),
      return: async () => {
        this.ended = true;
        const s = this.slot;
        this.slot = undefined;
        s?.taken();
        return { value: undefined, done: true };
      },
    };
  }
}

/** Largest text a {@link TextScratch} encodes into its kept buffer. */
const SCRATCH_MAX = 1024 * 1024;

/**
 * UTF-8 bytes of a batch's text in one buffer used again for every batch. Writing a string makes
 * a fresh buffer per write, which now and then outlives two young-generation collections and
 * then holds native memory until a full collection (a long run's RSS crept up with them). Use it
 * only where the write is finished with the bytes when its promise or callback settles (a file
 * handle, `process.stdout`), since the next `encode` overwrites them.
 *
 * @example
 * const scratch = new TextScratch();
 * await handle.write(scratch.encode('{"a":1}\n'));
 */
export class TextScratch {
  private buf: Buffer | undefined;

  /** The UTF-8 bytes of `text`: a view of the kept buffer, valid until the next call. */
  encode(text: string): Buffer {
    const n = Buffer.byteLength(text);
    // Text over 1 MiB (huge batches) is not kept: a fresh buffer, as a stream would make.
    if (n > SCRATCH_MAX) return Buffer.from(text);
    if (this.buf === undefined || this.buf.length < n)
      this.buf = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(n * 2, 64 * 1024)));
    return this.buf.subarray(0, this.buf.write(text));
  }
}
