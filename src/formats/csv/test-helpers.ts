/**
 * Test helpers for the CSV format: run a decoder over bytes cut into chunks and collect what it
 * reports. Used by the tests beside this file only.
 */

import type { SluiceError } from '../../core/errors.ts';
import type { DecodeSink } from '../format.ts';
import { writeBorrowed } from '../test-helpers.ts';
import { CsvDecoder, type CsvRow } from './decoder.ts';
import type { CsvDecodeOptions } from './options.ts';

/** One thing a decoder reported, in order. */
export type Event =
  | { kind: 'record'; value: CsvRow; line: number; offset: number }
  | { kind: 'invalid'; error: SluiceError; raw: string; line: number; offset: number };

/** A decoder sink that appends what the decoder reports to `events`. */
function eventSink(events: Event[]): DecodeSink<CsvRow> {
  return {
    record: (value, line, offset) => events.push({ kind: 'record', value, line, offset }),
    invalid: (error, raw, line, offset) =>
      events.push({ kind: 'invalid', error, raw: Buffer.from(raw).toString('latin1'), line, offset }),
  };
}

/** Decodes `input` fed in pieces of `chunk` bytes (all at once when 0); returns every event. */
export function decode(input: string | Uint8Array, options: CsvDecodeOptions = {}, chunk = 0): Event[] {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const events: Event[] = [];
  const sink = eventSink(events);
  const dec = new CsvDecoder(options);
  if (chunk <= 0) dec.write(bytes, sink);
  else for (let i = 0; i < bytes.length; i += chunk) dec.write(bytes.slice(i, i + chunk), sink);
  dec.end(sink);
  return events;
}

/**
 * Decodes `input` in pieces of `chunk` bytes, each copied into the same buffer, which is
 * scribbled over after every write: as a reader that reuses its buffers feeds the decoder.
 */
export function decodeBorrowed(
  input: string | Uint8Array,
  options: CsvDecodeOptions,
  chunk: number,
): Event[] {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const events: Event[] = [];
  writeBorrowed(new CsvDecoder(options), bytes, chunk, eventSink(events));
  return events;
}

/** Decodes `input` in two writes, split at byte `cut`. */
export function decodeSplit(input: Uint8Array, options: CsvDecodeOptions, cut: number): Event[] {
  const events: Event[] = [];
  const sink = eventSink(events);
  const dec = new CsvDecoder(options);
  dec.write(input.slice(0, cut), sink);
  dec.write(input.slice(cut), sink);
  dec.end(sink);
  return events;
}

/** The records only. */
export function records(input: string | Uint8Array, options: CsvDecodeOptions = {}, chunk = 0): CsvRow[] {
  return decode(input, options, chunk).flatMap((e) => (e.kind === 'record' ? [e.value] : []));
}

/** A comparable view of events: error messages are replaced by their context. */
export function comparable(events: Event[]): unknown[] {
  return events.map((e) =>
    e.kind === 'record'
      ? ['R', e.value, e.line, e.offset]
      : ['I', e.error.code, e.error.message, e.raw, e.line, e.offset],
  );
}
