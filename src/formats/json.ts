/**
 * JSON text to values and back within Sluice's record limits: {@link parseJson} rejects text
 * nesting deeper than {@link MAX_RECORD_DEPTH}, {@link stringifyJson} writes bigints as decimal
 * strings (a {@link Decimal} as its exact text, `"473.98"`) and turns every failure (a record too deep for the stack, a cycle, a throwing
 * `toJSON`) into a `SLUICE_RECORD` error that says where and what to do, never a stack overflow.
 * Every encoder and decoder of records as JSON goes through these two (connectors included).
 */
import { Decimal } from '../core/decimal.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { deeperThan, MAX_RECORD_DEPTH, tooDeepError } from '../core/nesting.ts';

export { MAX_RECORD_DEPTH } from '../core/nesting.ts';

const OPEN_BRACE = '{';
const OPEN_BRACKET = '[';

/**
 * Index of the bracket in the JSON text `text` that opens level `max + 1`, or -1 when the text
 * nests no deeper than `max`. Expects valid JSON (call it after `JSON.parse` succeeded).
 * Text of up to `2 * max` characters cannot nest deeper and is not read; longer text is first
 * bounded by counting its brackets with `indexOf`, and scanned exactly only when it holds more
 * than `max` of them.
 *
 * @example
 * jsonNestingOver('[[[1]]]', 2); // 2
 */
export function jsonNestingOver(text: string, max: number = MAX_RECORD_DEPTH): number {
  if (text.length <= 2 * max) return -1;
  let n = 0;
  for (let i = text.indexOf(OPEN_BRACE); i !== -1 && n <= max; i = text.indexOf(OPEN_BRACE, i + 1)) n++;
  for (let i = text.indexOf(OPEN_BRACKET); i !== -1 && n <= max; i = text.indexOf(OPEN_BRACKET, i + 1)) n++;
  if (n <= max) return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return -1;
}

/**
 * A `JSON.parse` reviver; `context.source` is the exact text of a primitive value (a number as
 * written, before it became a double).
 */
export type JsonReviver = (key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * A reviver making the JSON numbers of the fields named `fields` (at any depth; `*` for every
 * number) exact {@link Decimal}s, read from their source text: `{"amount": 473.98}` and
 * `{"amount": "473.98"}` both give 473.98 at scale 2, and `12345678901234567890.12` keeps every
 * digit. Such a field holding anything else but null (a word, a bool, an object) throws an
 * error naming the field and the value: the line is a dead letter.
 *
 * @example
 * parseJson('{"amount":473.98}', decimalReviver(['amount'])); // { amount: Decimal 473.98 }
 */
export function decimalReviver(fields: readonly string[]): JsonReviver {
  const all = fields.includes('*');
  const names = new Set(fields);
  return (key, value, context) => {
    if (!all && !names.has(key)) return value;
    if (typeof value === 'number') {
      const d = Decimal.parse(context?.source ?? String(value));
      if (d !== undefined) return d;
      throw new Error(
        `field \`${key}\`: ${context?.source ?? value} is beyond the decimal range (scale ≤ 100)`,
      );
    }
    if (all || value === null) return value;
    if (typeof value === 'string') {
      const d = Decimal.parse(value);
      if (d !== undefined) return d;
    }
    const shown = JSON.stringify(value) ?? String(value);
    throw new Error(
      `field \`${key}\`: ${shown.length > 40 ? `${shown.slice(0, 37)}...` : shown} is not a decimal number; fix the value or remove \`${key}\` from \`decimals\``,
    );
  };
}

/**
 * `JSON.parse(text)`, rejecting a value that nests deeper than {@link MAX_RECORD_DEPTH} levels:
 * `JSON.parse` itself takes any depth, but every later step that walks the value (writing it,
 * checkpointing it) would overflow the stack. Throws a `SyntaxError` for bad JSON and a
 * `SLUICE_PARSE` error for a too deep value (its message says at which byte).
 *
 * @example
 * parseJson('{"a":1}'); // { a: 1 }
 * parseJson('['.repeat(600) + ']'.repeat(600)); // throws: nests deeper than 512 levels …
 */
export function parseJson(text: string): unknown {
  return checkedDepth(text, JSON.parse(text));
}

/**
 * The parser of one JSON document for a message source's `decimals` option (`kafka`, `redis`,
 * `pulsar` with `format: json`): {@link parseJsonRevived} with {@link decimalReviver} of
 * `decimals`, or undefined when no field is listed (the source keeps its own fast parser).
 *
 * @example
 * decimalJsonParser(['amount'])?.('{"amount":9007199254740993}'); // { amount: Decimal 9007199254740993 }
 */
export function decimalJsonParser(
  decimals: readonly string[] | undefined,
): ((text: string) => unknown) | undefined {
  if (decimals === undefined || decimals.length === 0) return undefined;
  const reviver = decimalReviver(decimals);
  return (text) => parseJsonRevived(text, reviver);
}

/** {@link parseJson} with a reviver (`JSON.parse(text, reviver)`), such as {@link decimalReviver}. */
export function parseJsonRevived(text: string, reviver: JsonReviver): unknown {
  return checkedDepth(text, JSON.parse(text, reviver as never));
}

/** `value`, parsed from `text`, unless it nests deeper than {@link MAX_RECORD_DEPTH}. */
function checkedDepth(text: string, value: unknown): unknown {
  if (text.length > 2 * MAX_RECORD_DEPTH) {
    const at = jsonNestingOver(text);
    if (at !== -1) {
      const byte = Buffer.byteLength(text.slice(0, at));
      throw new SluiceError(
        ErrorCode.PARSE,
        `the value nests deeper than ${MAX_RECORD_DEPTH} levels of objects and arrays (level ${MAX_RECORD_DEPTH + 1} opens at byte ${byte} of it)`,
        { maxDepth: MAX_RECORD_DEPTH, depthOffset: byte },
      );
    }
  }
  return value;
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * `JSON.stringify(value)` where a bigint anywhere becomes its decimal string; undefined for what
 * JSON cannot hold at top level (`undefined`, a function, a symbol). Throws a `SLUICE_RECORD`
 * error for a value JSON cannot hold: one nesting too deep for the stack (the message names
 * where), a circular one, one whose `toJSON` or getter throws.
 *
 * Costs what `JSON.stringify` costs: the depth is looked at only after it failed.
 *
 * @example
 * stringifyJson({ n: 2n ** 64n }); // '{"n":"18446744073709551616"}'
 */
export function stringifyJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    // Retried with a replacer only when needed: a replacer slows every record down.
    if (err instanceof TypeError && /BigInt/i.test(err.message)) {
      try {
        return JSON.stringify(value, bigintAsString);
      } catch (again) {
        throw unwritable(value, again);
      }
    }
    throw unwritable(value, err);
  }
}

/** The `SLUICE_RECORD` error for `value`, which `JSON.stringify` failed on with `err`. */
function unwritable(value: unknown, err: unknown): SluiceError {
  if (err instanceof RangeError) {
    const path = deeperThan(value);
    if (path !== undefined) return tooDeepError('writing JSON', path, err);
  }
  const why =
    err instanceof TypeError && /circular/i.test(err.message)
      ? 'the record refers to itself (a circular structure)'
      : errorMessage(err);
  return new SluiceError(
    ErrorCode.RECORD,
    `writing JSON: ${why}; map the record to plain data first or let it go to the dlq`,
    {},
    { cause: err },
  );
}

/**
 * Serialises one value as JSON: a bigint anywhere becomes its decimal string, `undefined`
 * becomes `null`. Throws the `SLUICE_RECORD` errors of {@link stringifyJson}.
 *
 * @example
 * toJsonLine(undefined); // 'null'
 */
export function toJsonLine(value: unknown): string {
  return stringifyJson(value) ?? 'null';
}
