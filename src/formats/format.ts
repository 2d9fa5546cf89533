/**
 * The contract between byte streams (files, stdin, Kafka values…) and records: a
 * {@link RecordDecoder} turns chunks of bytes into records, a {@link RecordEncoder} turns
 * records into bytes. Formats (`lines`, `jsonl`, `csv`…) implement both.
 */
import type { SluiceError } from '../core/errors.ts';
import type { FieldUse } from '../core/projection.ts';

/**
 * Where a decoder's input starts within the whole input, for a restart from a saved
 * {@link RecordDecoder.position}: `line` lines and `offset` bytes come before the first byte the
 * decoder is given. Every format's decoder takes it as its `start` option and counts lines and
 * offsets from there, so a resumed decoder reports the same numbers as one that read from the top.
 */
export interface DecodeStart {
  /** Complete lines before the first byte given (0 at the top of the input). */
  readonly line: number;
  /** Bytes before the first byte given. */
  readonly offset: number;
}

/** Receives what a decoder finds, synchronously, in input order. */
export interface DecodeSink<T> {
  /**
   * One decoded record. `line` is the 1-based line where it starts, `offset` the 0-based byte
   * offset of its first byte in the (decompressed) input.
   */
  record(value: T, line: number, offset: number): void;
  /**
   * One input record that could not be decoded. `error` says what and where (its context
   * has `line` and `offset`); `raw` holds the record's bytes, cut to a bounded length (a view
   * of the input, valid only during this call when the decoder borrows its chunks: copy to keep).
   * Decoding goes on with the next record unless the decoder is strict (then it throws).
   */
  invalid(error: SluiceError, raw: Uint8Array, line: number, offset: number): void;
}

/**
 * Turns chunks of bytes into records. Stateful: a record may span chunks. Memory is bounded
 * by the longest allowed record, never by the input size.
 */
export interface RecordDecoder<T = unknown> {
  /** Decodes every complete record in `chunk` (plus what earlier chunks left over). */
  write(chunk: Uint8Array, sink: DecodeSink<T>): void;
  /** End of input: decodes a last record without a trailing newline, reports a truncated one. */
  end(sink: DecodeSink<T>): void;
  /**
   * Where a restart would resume: after the last complete record, `line` complete lines and
   * `offset` bytes of the whole input are done (counted from the top, `start` included). Pass it
   * as the `start` option of a new decoder given the bytes from `offset` on.
   */
  position(): DecodeStart;
  /**
   * True when {@link write} keeps no reference to its `chunk` once it returns (it copies what it
   * keeps, and `raw` given to {@link DecodeSink.invalid} is read during that call): the caller
   * may then read the next bytes into the same memory. Absent or false: every chunk must be a
   * fresh buffer.
   */
  readonly borrowsChunks?: boolean;
  /**
   * Optional projection, called at most once before the first {@link write}: records may then
   * hold only these top-level fields (each one the input has), and the decoder may skip the
   * others without making values of them. `uses` says how fields are read (see `FieldUse` in
   * `core/projection.ts`): a decoder may hand such a field over ready. Errors are reported as
   * without it.
   */
  project?(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>): void;
}

/** Turns records into bytes. */
export interface RecordEncoder<T = unknown> {
  /** Bytes written once at the start of the output (e.g. a CSV header), if any. */
  header?(): Uint8Array | string | undefined;
  /**
   * Encodes a batch of records; the result is appended to the output as is. A record the format
   * cannot hold (too deep, circular, not a row) is passed to `reject` with its index and a
   * `SLUICE_RECORD` error, called synchronously, and left out of the result; the others are
   * encoded. Without `reject`, such a record makes `encode` throw that error (and the encoder
   * may then have written a header into nothing: make a new one).
   */
  encode(records: readonly T[], reject?: (index: number, error: unknown) => void): Uint8Array | string;
}
