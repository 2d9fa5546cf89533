/**
 * The Redis Streams entry codec of the `redis` source and sink: entry fields ↔ record.
 */
import { Decimal } from '../../core/decimal.ts';
import { parseJson, stringifyJson } from '../../formats/json.ts';

/** How an entry field's value becomes a record value and back. */
export type RedisFormat = 'json' | 'raw';

/**
 * The record of one entry: the value of `field` decoded (`json`: parsed, `raw`: the string), or
 * without `field` the whole entry as an object (`raw`: string values, `json`: each value
 * parsed, by `parse`: `parseJson`, or the lossless parser of a `decimals` option). Throws on
 * invalid JSON, JSON nesting deeper than 512 levels and a missing `field`.
 */
export function decodeEntry(
  fields: readonly string[],
  field: string | undefined,
  format: RedisFormat,
  parse: (text: string) => unknown = parseJson,
): unknown {
  if (field !== undefined) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === field) {
        const v = fields[i + 1] as string;
        return format === 'json' ? parse(v) : v;
      }
    }
    throw new Error(`the entry has no field \`${field}\``);
  }
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const v = fields[i + 1] as string;
    out[fields[i] as string] = format === 'json' ? parse(v) : v;
  }
  return out;
}

/** A value as entry-field text: `json` as JSON (bigints as digits), `raw` as a string. */
function fieldText(value: unknown, format: RedisFormat): string {
  if (format === 'raw') {
    if (typeof value === 'string') return value;
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (value instanceof Decimal) return value.toString();
    if (value !== null && typeof value === 'object') return jsonText(value);
    return String(value);
  }
  return jsonText(value);
}

function jsonText(value: unknown): string {
  const text = stringifyJson(value);
  if (text === undefined) throw new Error(`a ${typeof value} cannot be written as JSON`);
  return text;
}

/**
 * The inverse of {@link decodeEntry}: the XADD field/value list of `record`. With `field`, one
 * field holding the whole record; without, one field per top-level property (the record must
 * then be a non-empty object).
 */
export function encodeEntry(record: unknown, field: string | undefined, format: RedisFormat): string[] {
  if (field !== undefined) return [field, fieldText(record, format)];
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new Error('without `field` a record must be an object (one entry field per property)');
  }
  const out: string[] = [];
  for (const [k, v] of Object.entries(record as Record<string, unknown>)) {
    if (v === undefined) continue;
    out.push(k, fieldText(v, format));
  }
  if (out.length === 0) throw new Error('an entry needs at least one field; the record has none');
  return out;
}
