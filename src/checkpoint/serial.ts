/**
 * `v8.serialize` and `v8.deserialize` for checkpoint state and write-ahead log entries, with
 * the errors a user can act on. Both recurse per level of nesting: a value nesting a few thousand
 * levels deep (a record built deeper and deeper by a `map` step) overflows the stack. Records from
 * sources nest at most `MAX_RECORD_DEPTH` (512) levels, which both take with a wide margin.
 */
import { deserialize, serialize } from 'node:v8';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { deeperThan, MAX_RECORD_DEPTH } from '../core/nesting.ts';

/** Levels of checkpoint structure around a record (entry, batch, records array, map…). */
const WRAPPING_LEVELS = 8;

/**
 * `v8.serialize(value)`; a failure becomes a `SLUICE_STAGE` error saying what was being stored
 * (`what`, e.g. ``the state of stage `window` ``) and, for a value too deep, where.
 */
export function serializeState(value: unknown, what: string): Buffer {
  try {
    return serialize(value);
  } catch (err) {
    const path =
      err instanceof RangeError ? deeperThan(value, MAX_RECORD_DEPTH + WRAPPING_LEVELS) : undefined;
    const why =
      path !== undefined
        ? `it nests deeper than ${MAX_RECORD_DEPTH} levels of objects and arrays (at \`${path}\`); keep records and state flatter`
        : `${errorMessage(err)}; state must be structured-cloneable (plain objects, arrays, Map, Set, bigint, typed arrays)`;
    throw new SluiceError(ErrorCode.STAGE, `storing ${what}: ${why}`, {}, { cause: err });
  }
}

/**
 * `v8.deserialize(bytes)`; a failure becomes a `SLUICE_STAGE` error saying what was being read
 * and what to do (a value nested too deep for this process's stack can be read with a larger one).
 */
export function deserializeState(bytes: Uint8Array, what: string): unknown {
  try {
    return deserialize(bytes);
  } catch (err) {
    const why =
      err instanceof RangeError && /call stack/i.test(err.message)
        ? 'it nests too deep for the stack; restore it once with a larger stack (`NODE_OPTIONS=--stack-size=4000`) or delete the checkpoint folder to start over'
        : `${errorMessage(err)}; the checkpoint is damaged or was written by another version: delete the checkpoint folder to start over`;
    throw new SluiceError(ErrorCode.STAGE, `reading ${what}: ${why}`, {}, { cause: err });
  }
}
