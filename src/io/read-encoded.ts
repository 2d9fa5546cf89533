/**
 * The input half of a source fused with its sink (see `core/encoded.ts`): a stream of byte chunks
 * through a transcoder into batches of pre-encoded rows ({@link Batch.encoded}); bad rows go to
 * the dead-letter output as in {@link pumpRecords}.
 */
import { cancelledError } from '../core/errors.ts';
import type { Batch, EncodedFormat, Position, RecordMeta } from '../core/message.ts';
import type { Emitter, SourceContext } from '../core/stage.ts';
import type { TranscodeSink } from '../formats/csv/transcode.ts';
import type { DecodeStart } from '../formats/format.ts';

/** Turns chunks of input bytes into encoded rows (as `CsvJsonlTranscoder` does). */
export interface Transcoder {
  /** Transcodes the complete rows of `chunk`; see `CsvJsonlTranscoder.write`. */
  write(chunk: Uint8Array, sink: TranscodeSink): void;
  /** End of input; see `CsvJsonlTranscoder.end`. */
  end(sink: TranscodeSink): void;
  /** Where a restart would resume (see `RecordDecoder.position`). */
  position(): DecodeStart;
}

/** Options of {@link pumpEncoded}. */
export interface PumpEncodedOptions {
  /** The format the transcoder writes. */
  format: EncodedFormat;
  /** Builds a dead letter's `meta.position` from its line and byte offset. */
  position: (line: number, offset: number) => Position;
  /** Fail the run with the first bad row's error instead of dead-lettering it. Default false. */
  strict?: boolean | undefined;
  /** Called just before each batch is emitted, and after dead letters sent with no batch after them, with where the input then stands. */
  emitted?: ((at: DecodeStart) => void) | undefined;
}

/** What one `write` made, in input order: a batch of rows, or a dead letter. */
type Made =
  | {
      readonly rows: Uint8Array;
      readonly count: number;
      readonly release: () => void;
      readonly at: DecodeStart;
    }
  | { readonly rows?: undefined; readonly raw: string; readonly error: unknown; readonly meta: RecordMeta };

/**
 * Transcodes `bytes` and emits a batch per {@link TranscodeSink.rows} call: `records` of `count`
 * empty slots, `encoded` the bytes, no meta (nothing downstream reads a record). Bad rows go to
 * `ctx.deadLetter` as {@link pumpRecords} sends them (their raw bytes as text, the error, `meta`
 * with their position), before the batch that follows them, or fail the run with `strict`.
 *
 * The source's position for a checkpoint (`emitted`) is, for a batch cut because it was full, the
 * point right after its last row, and for the last batch of a chunk the transcoder's position
 * after the chunk; dead letters after a batch go out before the next one, whose position covers
 * them (or alone, followed by `emitted`, when no batch follows in that chunk).
 *
 * Returns when the input ends or, between chunks, when `ctx.stopSignal` aborts; throws a
 * cancellation error when `ctx.signal` aborts.
 */
export async function pumpEncoded(
  bytes: AsyncIterable<Uint8Array>,
  transcoder: Transcoder,
  out: Emitter<unknown>,
  ctx: SourceContext,
  options: PumpEncodedOptions,
): Promise<void> {
  const { format, position, emitted } = options;
  const strict = options.strict ?? false;
  const source = ctx.name;
  const made: Made[] = [];
  const sink: TranscodeSink = {
    rows(rows, count, release) {
      made.push({ rows, count, release, at: transcoder.position() });
    },
    invalid(error, raw, line, offset) {
      if (strict) throw error;
      made.push({
        raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'),
        error,
        meta: { source, position: position(line, offset) },
      });
    },
  };
  const flush = async (): Promise<void> => {
    let lastRows = -1;
    for (let i = 0; i < made.length; i++) if (made[i]?.rows !== undefined) lastRows = i;
    for (let i = 0; i < made.length; i++) {
      const m = made[i] as Made;
      if (m.rows === undefined) {
        ctx.deadLetter(m.raw, m.error, m.meta);
        continue;
      }
      emitted?.(i === lastRows && lastRows === made.length - 1 ? transcoder.position() : m.at);
      const batch: Batch<unknown> = {
        kind: 'batch',
        records: new Array(m.count),
        encoded: { format, bytes: m.rows, release: m.release },
      };
      await out.emit(batch);
    }
    // Dead letters after the last batch: handed on now, so the position moves past their lines.
    if (made.length > 0 && lastRows !== made.length - 1) emitted?.(transcoder.position());
    made.length = 0;
  };
  for await (const chunk of bytes) {
    if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    transcoder.write(chunk, sink);
    await flush();
    if (ctx.stopSignal.aborted) return;
  }
  if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
  transcoder.end(sink);
  await flush();
}
