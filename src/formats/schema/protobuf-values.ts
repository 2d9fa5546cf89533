/**
 * Protobuf message values ↔ natural records, compiled once per message type: a decoded
 * protobufjs message becomes a plain record, and a record (JSON values as pipelines hold them)
 * becomes the object protobufjs's `encode` writes, checked and coerced field by field.
 *
 * Why compiled: the converters are built once per `protobuf.Type` (a closure per field, cached),
 * so per record there is no lookup by type name and no detour through protobufjs's `fromObject`
 * (measured in `npm run bench -- schemas`).
 *
 * Record values (the proto3 JSON mapping, made natural; see `protobuf.ts`):
 * - 64-bit integers: numbers within ±2^53, else bigints; encoding also takes decimal-integer text
 *   (how JSON writers print such bigints) and bigints;
 * - 32-bit integers: numbers; encoding also takes decimal-integer text; floats and doubles:
 *   numbers, or the text `"NaN"`, `"Infinity"`, `"-Infinity"` or a decimal number;
 * - bools: booleans (or the text `"true"`/`"false"`); enums: value names (encoding also takes the
 *   number); bytes: base64 text (encoding also takes bytes);
 * - `google.protobuf.Timestamp`: ISO-8601 text (encoding also takes a Date or epoch milliseconds);
 *   `Duration`: `"1.500s"`; wrappers: their value; `Struct`/`Value`/`ListValue`: JSON values;
 *   `google.type.Decimal`: a `Decimal` (core/decimal.ts; encoding also takes decimal text, a number
 *   or a bigint).
 *
 * Encoding a value that does not fit throws an Error whose message starts with the field path
 * (`field \`items[2].price\`: …`) and says what was expected. Fields of the record that the
 * message does not declare are not written; `null` and `undefined` leave a field unset.
 */
import { Buffer } from 'node:buffer';
import protobuf from 'protobufjs';
import { Decimal } from '../../core/decimal.ts';
import { isoMillis, parseCanonicalIso } from './iso-time.ts';

/** The wrapper messages (`Int64Value`…), each holding one `value`. */
export const WRAPPERS: ReadonlySet<string> = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map(
    (t) => `.google.protobuf.${t}Value`,
  ),
);

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED = new Set(['uint64', 'fixed64', 'uint32', 'fixed32']);
const INT32_TYPES = new Set(['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32']);
const TWO_32 = 0x100000000;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT_TEXT = /^[+-]?\d+$/;
const DECIMAL_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64_TEXT = /^[A-Za-z0-9+/_-]*={0,2}$/;
const ISO_TIME = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$/;
const DURATION_TEXT = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/;

/** A decoded 64-bit integer as protobufjs holds it (a `long` Long, or a number when it fits). */
interface LongLike {
  readonly low: number;
  readonly high: number;
  readonly unsigned?: boolean;
}

/** A protobufjs 64-bit value → a number within ±2^53, else an exact bigint. */
export function longToPlain(v: unknown): number | bigint {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = BigInt(v);
    return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
  }
  const { low, high, unsigned } = v as LongLike;
  if (unsigned === true) {
    const hi = high >>> 0;
    if (hi < 0x200000) return hi * TWO_32 + (low >>> 0);
    return (BigInt(hi) << 32n) | BigInt(low >>> 0);
  }
  if (high >= -0x200000 && high < 0x200000) return high * TWO_32 + (low >>> 0);
  return BigInt.asIntN(64, (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0));
}

/** A bigint → the `{ low, high }` pair protobufjs's writer takes for a 64-bit field. */
function longBits(n: bigint): LongLike {
  const u = BigInt.asUintN(64, n);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0 };
}

/** How a value is described in an error: short, quoted when text. */
function shown(v: unknown): string {
  if (typeof v === 'string') return `\`${v.length > 40 ? `${v.slice(0, 40)}…` : v}\``;
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return `the Date ${Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()}`;
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}

/** The error of a value at `path` that does not fit: `field \`path\`: <value> <why>`. */
function misfit(path: string, v: unknown, why: string): Error {
  return new Error(`field \`${path}\`: ${shown(v)} ${why}`);
}

/** The converter of `type` in `cache`, built and kept on first use. */
function compiled<F>(
  cache: WeakMap<protobuf.Type, F>,
  type: protobuf.Type,
  build: (t: protobuf.Type) => F,
): F {
  let f = cache.get(type);
  if (f === undefined) {
    f = build(type);
    cache.set(type, f);
  }
  return f;
}

// ——— decoding: protobufjs message → record ———

type ToPlain = (v: unknown) => unknown;

const plainCache = new WeakMap<protobuf.Type, ToPlain>();

function isoFromSeconds(seconds: number | bigint, nanos: number): string {
  const ms = Number(seconds) * 1000 + Math.floor(nanos / 1e6);
  const base = isoMillis(ms);
  const sub = nanos % 1e6;
  if (sub === 0) return base;
  const digits = String(nanos).padStart(9, '0');
  return `${base.slice(0, -5)}.${sub % 1000 === 0 ? digits.slice(0, 6) : digits}Z`;
}

function durationText(seconds: number | bigint, nanos: number): string {
  const total = BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
  const neg = total < 0n;
  const abs = neg ? -total : total;
  let frac = String(abs % 1_000_000_000n).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${frac}s`;
}

function scalarToPlain(field: protobuf.Field): ToPlain {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const names = rt.valuesById;
    return (v) => names[v as number] ?? v;
  }
  if (rt instanceof protobuf.Type) {
    let sub: ToPlain | undefined;
    // Built on first use: a message type may contain itself.
    return (v) => {
      if (v === null || v === undefined) return null;
      if (sub === undefined) sub = toPlain(rt);
      return sub(v);
    };
  }
  if (LONG_TYPES.has(field.type)) return longToPlain;
  if (field.type === 'bytes') return (v) => Buffer.from(v as Uint8Array).toString('base64');
  return (v) => v;
}

function buildToPlain(type: protobuf.Type): ToPlain {
  if (WRAPPERS.has(type.fullName)) {
    const conv = scalarToPlain(type.fields.value as protobuf.Field);
    return (m) => conv((m as { value: unknown }).value);
  }
  switch (type.fullName) {
    case '.google.protobuf.Timestamp':
      return (m) => {
        const t = m as { seconds?: unknown; nanos?: number };
        return isoFromSeconds(longToPlain(t.seconds ?? 0), t.nanos ?? 0);
      };
    case '.google.protobuf.Duration':
      return (m) => {
        const t = m as { seconds?: unknown; nanos?: number };
        return durationText(longToPlain(t.seconds ?? 0), t.nanos ?? 0);
      };
    case '.google.protobuf.Struct': {
      const vt = (type.fields.fields as protobuf.Field).resolvedType as protobuf.Type;
      return (m) => {
        const value = toPlain(vt);
        const out: Record<string, unknown> = {};
        const fields = ((m as { fields?: Record<string, unknown> }).fields ?? {}) as Record<string, unknown>;
        for (const k of Object.keys(fields)) out[k] = value(fields[k]);
        return out;
      };
    }
    case '.google.protobuf.Value': {
      const byKind = new Map<string, ToPlain>();
      for (const f of type.fieldsArray) byKind.set(f.name, scalarToPlain(f));
      return (m) => {
        const kind = (m as { kind?: string }).kind;
        const conv = kind === undefined || kind === 'nullValue' ? undefined : byKind.get(kind);
        return conv === undefined ? null : conv((m as Record<string, unknown>)[kind as string]);
      };
    }
    case '.google.protobuf.ListValue': {
      const vt = (type.fields.values as protobuf.Field).resolvedType as protobuf.Type;
      return (m) => {
        const value = toPlain(vt);
        return ((m as { values?: unknown[] }).values ?? []).map(value);
      };
    }
    case '.google.type.Decimal':
      // Text that is no decimal number stays text (the writer's mistake is visible downstream).
      return (m) => {
        const text = (m as { value?: string }).value ?? '';
        return Decimal.parse(text) ?? text;
      };
  }
  const names: string[] = [];
  const convs: ToPlain[] = [];
  const kinds: number[] = []; // 0 single, 1 repeated, 2 map, 3 oneof member
  for (const field of type.fieldsArray) {
    names.push(field.name);
    convs.push(scalarToPlain(field));
    kinds.push(
      field.map ? 2 : field.repeated ? 1 : field.partOf !== null && field.partOf.oneof.length > 0 ? 3 : 0,
    );
  }
  const n = names.length;
  return (msg) => {
    const m = msg as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const name = names[i] as string;
      const conv = convs[i] as ToPlain;
      const kind = kinds[i];
      const v = m[name];
      if (kind === 0) out[name] = conv(v);
      else if (kind === 1) {
        const list = (v ?? []) as unknown[];
        const o = new Array<unknown>(list.length);
        for (let j = 0; j < list.length; j++) o[j] = conv(list[j]);
        out[name] = o;
      } else if (kind === 2) {
        const o: Record<string, unknown> = {};
        const src = (v ?? {}) as Record<string, unknown>;
        for (const k of Object.keys(src)) o[k] = conv(src[k]);
        out[name] = o;
      } else if (Object.hasOwn(m, name)) out[name] = conv(v);
    }
    return out;
  };
}

/**
 * The converter of decoded messages of `type` to records (compiled once per type).
 *
 * @example
 * const plain = toPlain(Order)(Order.decode(bytes)); // { id: 1, at: '2026-01-01T00:00:00.000Z', … }
 */
export function toPlain(type: protobuf.Type): ToPlain {
  return compiled(plainCache, type, buildToPlain);
}

// ——— encoding: record → object for protobufjs's encode ———

type ToMessage = (v: unknown, path: string) => unknown;

const messageCache = new WeakMap<protobuf.Type, ToMessage>();

function intText(v: string, path: string, what: string): bigint {
  const t = v.trim();
  if (!INT_TEXT.test(t)) throw misfit(path, v, `is not ${what} (decimal integer text is accepted)`);
  return BigInt(t);
}

function int32Conv(type: string): ToMessage {
  const unsigned = UNSIGNED.has(type);
  const min = unsigned ? 0 : -(2 ** 31);
  const max = unsigned ? 2 ** 32 - 1 : 2 ** 31 - 1;
  const what = `a ${unsigned ? 'non-negative ' : ''}32-bit integer (\`${type}\`)`;
  return (v, path) => {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string') n = Number(intText(v, path, what));
    else if (typeof v === 'bigint') n = Number(v);
    else throw misfit(path, v, `is not ${what}`);
    if (!Number.isInteger(n)) throw misfit(path, v, `is not ${what}: it has a fraction`);
    if (n < min || n > max) throw misfit(path, v, `is out of the range of ${what}`);
    return n;
  };
}

function int64Conv(type: string): ToMessage {
  const unsigned = UNSIGNED.has(type);
  const min = unsigned ? 0n : -(2n ** 63n);
  const max = unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n;
  const what = `a ${unsigned ? 'non-negative ' : ''}64-bit integer (\`${type}\`)`;
  return (v, path) => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) {
        if (!Number.isInteger(v)) throw misfit(path, v, `is not ${what}: it has a fraction`);
        throw misfit(
          path,
          v,
          `is beyond ±2^53, where numbers are not exact; give ${what} as a bigint or as decimal text`,
        );
      }
      if (unsigned && v < 0) throw misfit(path, v, `is out of the range of ${what}`);
      return v;
    }
    let n: bigint;
    if (typeof v === 'bigint') n = v;
    else if (typeof v === 'string') n = intText(v, path, what);
    else throw misfit(path, v, `is not ${what}`);
    if (n < min || n > max) throw misfit(path, v, `is out of the range of ${what}`);
    return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : longBits(n);
  };
}

function floatConv(type: string): ToMessage {
  return (v, path) => {
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string') {
      const t = v.trim();
      if (t === 'NaN' || t === 'Infinity' || t === '-Infinity' || DECIMAL_TEXT.test(t)) return Number(t);
    }
    throw misfit(path, v, `is not a number (\`${type}\`)`);
  };
}

function boolConv(v: unknown, path: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw misfit(path, v, 'is not a boolean (`true` or `false`)');
}

function stringConv(v: unknown, path: string): string {
  if (typeof v === 'string') return v;
  throw misfit(path, v, `is a${typeof v === 'object' ? 'n' : ''} ${typeof v}, not a string`);
}

function bytesConv(v: unknown, path: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string' && BASE64_TEXT.test(v)) return Buffer.from(v, 'base64');
  throw misfit(path, v, 'is not bytes (give bytes or base64 text)');
}

function enumConv(e: protobuf.Enum): ToMessage {
  const names = Object.keys(e.values);
  return (v, path) => {
    if (typeof v === 'string') {
      const n = e.values[v];
      if (n !== undefined) return n;
      throw misfit(
        path,
        v,
        `is not a value of enum \`${e.fullName.slice(1)}\` (${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''})`,
      );
    }
    if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
    throw misfit(path, v, `is not a value of enum \`${e.fullName.slice(1)}\` (give its name)`);
  };
}

function timestampConv(v: unknown, path: string): { seconds: number; nanos: number } {
  let text = v;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw misfit(path, v, 'is not a time');
    text = v.toISOString();
  }
  if (typeof text === 'number') {
    if (!Number.isFinite(text)) throw misfit(path, v, 'is not a time (epoch milliseconds)');
    const s = Math.floor(text / 1000);
    return { seconds: s, nanos: Math.round((text - s * 1000) * 1e6) };
  }
  if (typeof text === 'string') {
    const ms = parseCanonicalIso(text);
    if (!Number.isNaN(ms)) {
      const s = Math.floor(ms / 1000);
      return { seconds: s, nanos: (ms - s * 1000) * 1e6 };
    }
  }
  const m = typeof text === 'string' ? ISO_TIME.exec(text) : null;
  // Date.parse rolls 2023-02-29 over to March; the canonical parser checks the day exists.
  const dayOk = m !== null && !Number.isNaN(parseCanonicalIso(`${m[1]?.slice(0, 10)}T00:00:00.000Z`));
  const ms = m === null || !dayOk ? Number.NaN : Date.parse(`${m[1]}${m[3]}`);
  if (m === null || !Number.isFinite(ms))
    throw misfit(path, v, 'is not an ISO-8601 time such as `2026-01-31T12:00:00.000Z`');
  return { seconds: ms / 1000, nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

function durationConv(v: unknown, path: string): { seconds: number | LongLike; nanos: number } {
  const m = typeof v === 'string' ? DURATION_TEXT.exec(v) : null;
  if (m === null) throw misfit(path, v, 'is not a duration such as `1.5s`');
  const sign = m[1] === '-' ? -1 : 1;
  const s = BigInt(`${m[1]}${m[2]}`);
  return {
    seconds: s >= -MAX_SAFE && s <= MAX_SAFE ? Number(s) : longBits(s),
    nanos: sign * Number((m[3] ?? '').padEnd(9, '0')),
  };
}

function decimalConv(v: unknown, path: string): { value: string } {
  if (v instanceof Decimal) return { value: v.toString() };
  if (typeof v === 'string' && DECIMAL_TEXT.test(v.trim())) return { value: v.trim() };
  if (typeof v === 'bigint') return { value: v.toString() };
  if (typeof v === 'number' && Number.isFinite(v)) return { value: String(v) };
  throw misfit(path, v, 'is not a decimal number (`google.type.Decimal`: text such as `12.50`)');
}

function fieldConv(field: protobuf.Field): ToMessage {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) return enumConv(rt);
  if (rt instanceof protobuf.Type) {
    let sub: ToMessage | undefined;
    // Built on first use: a message type may contain itself.
    return (v, path) => {
      if (sub === undefined) sub = toMessage(rt);
      return sub(v, path);
    };
  }
  if (LONG_TYPES.has(field.type)) return int64Conv(field.type);
  if (INT32_TYPES.has(field.type)) return int32Conv(field.type);
  switch (field.type) {
    case 'double':
    case 'float':
      return floatConv(field.type);
    case 'bool':
      return boolConv;
    case 'string':
      return stringConv;
    case 'bytes':
      return bytesConv;
  }
  throw new Error(`field \`${field.name}\` has type \`${field.type}\`, which Sluice does not encode`);
}

function buildToMessage(type: protobuf.Type): ToMessage {
  if (WRAPPERS.has(type.fullName)) {
    const conv = fieldConv(type.fields.value as protobuf.Field);
    return (v, path) => ({ value: conv(v, path) });
  }
  switch (type.fullName) {
    case '.google.protobuf.Timestamp':
      return timestampConv;
    case '.google.protobuf.Duration':
      return durationConv;
    case '.google.type.Decimal':
      return decimalConv;
    case '.google.protobuf.Struct': {
      const value = type.root.lookupType('google.protobuf.Value');
      return (v, path) => {
        if (v === null || typeof v !== 'object' || Array.isArray(v))
          throw misfit(path, v, 'is not an object (`google.protobuf.Struct`)');
        const conv = toMessage(value);
        const fields: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) fields[k] = conv(x, `${path}.${k}`);
        return { fields };
      };
    }
    case '.google.protobuf.ListValue': {
      const value = type.root.lookupType('google.protobuf.Value');
      return (v, path) => {
        if (!Array.isArray(v)) throw misfit(path, v, 'is not an array (`google.protobuf.ListValue`)');
        const conv = toMessage(value);
        return { values: v.map((x, i) => conv(x, `${path}[${i}]`)) };
      };
    }
    case '.google.protobuf.Value': {
      const struct = type.root.lookupType('google.protobuf.Struct');
      const list = type.root.lookupType('google.protobuf.ListValue');
      return (v, path) => {
        if (v === null || v === undefined) return { nullValue: 0 };
        if (typeof v === 'number') return { numberValue: v };
        if (typeof v === 'bigint') return { numberValue: Number(v) };
        if (typeof v === 'string') return { stringValue: v };
        if (typeof v === 'boolean') return { boolValue: v };
        if (Array.isArray(v)) return { listValue: toMessage(list)(v, path) };
        return { structValue: toMessage(struct)(v, path) };
      };
    }
  }
  const fields = type.fieldsArray.map((field) => ({
    name: field.name,
    conv: fieldConv(field),
    kind: field.map ? 2 : field.repeated ? 1 : 0,
    oneof: field.partOf !== null && field.partOf.oneof.length > 0 ? field.partOf.name : undefined,
  }));
  const typeName = type.fullName.slice(1);
  return (value, path) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date)
      throw new Error(
        `${path === '' ? 'the record' : `field \`${path}\``} is ${shown(value)}, not an object (message \`${typeName}\`)`,
      );
    const src = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    let oneofs: Map<string, string> | undefined;
    for (const f of fields) {
      const v = src[f.name];
      if (v === undefined || v === null) continue;
      const at = path === '' ? f.name : `${path}.${f.name}`;
      if (f.oneof !== undefined) {
        oneofs ??= new Map();
        const other = oneofs.get(f.oneof);
        if (other !== undefined)
          throw new Error(
            `fields \`${other}\` and \`${at}\` are both set, but they belong to one oneof (\`${f.oneof}\`)`,
          );
        oneofs.set(f.oneof, at);
      }
      if (f.kind === 0) out[f.name] = f.conv(v, at);
      else if (f.kind === 1) {
        if (!Array.isArray(v)) throw misfit(at, v, 'is not an array (the field is repeated)');
        const o = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (x === null || x === undefined) throw misfit(`${at}[${i}]`, x, 'cannot be an element');
          o[i] = f.conv(x, `${at}[${i}]`);
        }
        out[f.name] = o;
      } else {
        if (typeof v !== 'object' || Array.isArray(v))
          throw misfit(at, v, 'is not an object (the field is a map)');
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          if (x === null || x === undefined) continue;
          o[k] = f.conv(x, `${at}.${k}`);
        }
        out[f.name] = o;
      }
    }
    return out;
  };
}

/**
 * The converter of records to objects protobufjs's `type.encode` writes (compiled once per
 * type). Throws an Error naming the field path for a value that does not fit (see the module
 * comment); `path` is the path of `value` itself (`''` for a record).
 *
 * @example
 * Order.encode(toMessage(Order)({ id: '9007199254740993', kind: 'CARD' }, '') as object).finish();
 */
export function toMessage(type: protobuf.Type): ToMessage {
  return compiled(messageCache, type, buildToMessage);
}
