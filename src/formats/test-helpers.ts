/** Helpers for the format tests (not part of the public API). */
import type { SluiceError } from '../core/errors.ts';
import type { DecodeSink, RecordDecoder } from './format.ts';

/** What a decoder reported, as plain data to compare: a record or an invalid report. */
export type DecodeEvent =
  | { kind: 'record'; value: unknown; line: number; offset: number }
  | { kind: 'invalid'; message: string; raw: string; line: number; offset: number };

/** A sink appending to `events`; `check` (when given) runs first on each invalid record. */
export function eventSink(
  events: DecodeEvent[],
  check?: (error: SluiceError, line: number, offset: number) => void,
): DecodeSink<unknown> {
  return {
    record: (value, line, offset) => events.push({ kind: 'record', value, line, offset }),
    invalid: (error, raw, line, offset) => {
      check?.(error, line, offset);
      events.push({
        kind: 'invalid',
        message: error.message,
        raw: Buffer.from(raw).toString('latin1'),
        line,
        offset,
      });
    },
  };
}

/**
 * Feeds `bytes` to `decoder` in pieces of `chunk` bytes, each copied into the same buffer, which
 * is scribbled over after every write — as a reader that reuses its buffers feeds a decoder that
 * says it `borrowsChunks` — then ends it.
 */
export function writeBorrowed<T>(
  decoder: RecordDecoder<T>,
  bytes: Uint8Array,
  chunk: number,
  sink: DecodeSink<T>,
): void {
  const buf = new Uint8Array(chunk);
  for (let i = 0; i < bytes.length; i += chunk) {
    const piece = bytes.subarray(i, i + chunk);
    buf.set(piece);
    decoder.write(buf.subarray(0, piece.length), sink);
    buf.fill(0x22); // `"`: any byte the decoder still read from here would change its output
  }
  decoder.end(sink);
}
