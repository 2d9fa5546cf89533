/**
 * Avro through `avsc`: schemas to types with the logical types that matter for money and time,
 * and reader/writer resolution (schema evolution).
 *
 * Library, by measurement (shared/LIBRARIES.md, Node 24, 10-field records): `avsc` 5.7.9 decodes
 * 1.43 M records/s, 1.64–1.76 M/s through a resolver; `@avro/types` and `avro-js` share its code
 * and are no faster. It compiles a reader per schema (no eval of user input: schemas are data).
 *
 * Values as records hold them:
 * - `long`: a number when it fits in ±2^53, else a bigint (exact; Sluice's JSON writers print such a
 *   bigint as a decimal string, and encoding takes that string back).
 * - `decimal` (bytes or fixed): a `Decimal` (core/decimal.ts) at the schema's scale, which JSON
 *   writers print as its exact text (`"12.50"` for scale 2). Encoding takes a Decimal, decimal
 *   text, a number or a bigint and refuses one with more fraction digits than the scale.
 * - `timestamp-millis` / `timestamp-micros`: ISO-8601 UTC text (`…T12:00:00.123Z`, micros with 6
 *   digits), the form Sluice's time fields and window bounds use; encoding also takes epoch-ms
 *   numbers and Dates. `date`: `YYYY-MM-DD`.
 * - unions are unwrapped (`null | string` is the string or null), as Python's fastavro reads them.
 */
import avro from 'avsc';
import { Decimal } from '../../core/decimal.ts';
import { isoMillis, parseCanonicalIso } from './iso-time.ts';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DAY_MS = 86_400_000;
const MIN_SAFE = -MAX_SAFE;

/**
 * avsc's reading/writing cursor. Its `buf` and `pos` are what avsc's own types use; a write past
 * the end only advances `pos` (the caller grows the buffer and writes again), a read past it
 * leaves the tap invalid (avsc then reports a truncated buffer).
 */
interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  writeLong(n: number): void;
}

/** How a `long` that is exact maps values: numbers while safe, bigints beyond. */
const exactLongMethods = {
  fromBuffer(buf: Buffer): number | bigint {
    const hi = buf.readInt32LE(4);
    // |value| < 2^53: two 32-bit halves, no BigInt.
    if (hi >= -0x200000 && hi < 0x200000) return hi * 0x100000000 + buf.readUInt32LE(0);
    const n = buf.readBigInt64LE();
    return n >= MIN_SAFE && n <= MAX_SAFE ? Number(n) : n;
  },
  toBuffer(v: number | bigint | string): Buffer {
    const b = Buffer.allocUnsafe(8);
    if (typeof v === 'number') {
      const hi = Math.floor(v / 0x100000000);
      b.writeUInt32LE(v - hi * 0x100000000, 0);
      b.writeInt32LE(hi, 4);
      return b;
    }
    b.writeBigInt64LE(BigInt(v));
    return b;
  },
  fromJSON(v: unknown): number | bigint {
    return typeof v === 'bigint' ? v : Number(v);
  },
  toJSON(v: number | bigint): number {
    return Number(v);
  },
  isValid(v: unknown): boolean {
    // Decimal-integer text too: JSON writers print longs beyond 2^53 as strings, and they must read back.
    if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) v = BigInt(v);
    return (
      (typeof v === 'number' && Number.isInteger(v)) ||
      (typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 63n)
    );
  },
  compare(a: number | bigint, b: number | bigint): number {
    return a < b ? -1 : a > b ? 1 : 0;
  },
};

/** avsc's custom-long class (what `LongType.__with` instantiates; avsc does not export it). */
const AbstractLongType = Object.getPrototypeOf(avro.types.LongType.__with(exactLongMethods))
  .constructor as new (
  noUnpack: boolean,
) => {
  _read(tap: Tap): unknown;
  _write(tap: Tap, v: unknown): void;
};

/**
 * The `long` that is exact. avsc's custom longs go through an 8-byte Buffer per value, but most
 * longs are far below 2^53, where avsc's own number varint code is exact: a varint of at most 7
 * bytes (a zig-zag value below 2^49) is read and an integer within ±2^52 written directly,
 * the rest through `exactLongMethods` (what `LongType.__with` would build, plus these two).
 */
class ExactLongType extends AbstractLongType {
  constructor() {
    super(false);
    const self = this as unknown as Record<string, unknown>;
    self._toBuffer = exactLongMethods.toBuffer;
    self._fromBuffer = exactLongMethods.fromBuffer;
    self._fromJSON = exactLongMethods.fromJSON;
    self._toJSON = exactLongMethods.toJSON;
    self._isValid = exactLongMethods.isValid;
    self.compare = exactLongMethods.compare;
    Object.freeze(this);
  }
  override _read(tap: Tap): unknown {
    const buf = tap.buf;
    const end = Math.min(buf.length, tap.pos + 7);
    for (let i = tap.pos; i < end; i++) if (((buf[i] as number) & 0x80) === 0) return tap.readLong();
    return super._read(tap);
  }
  override _write(tap: Tap, v: unknown): void {
    // avsc's varint writer is exact while the zig-zag value stays within 2^53.
    if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 52) && v <= 2 ** 52) tap.writeLong(v);
    else super._write(tap, v);
  }
}

const exactLong = new ExactLongType() as unknown as avro.Type;

/** Two's-complement big-endian bytes → bigint. */
function bytesToBigint(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  let n = BigInt.asUintN(8 * buf.length, BigInt(`0x${buf.toString('hex')}`));
  if ((buf[0] as number) & 0x80) n -= 1n << BigInt(8 * buf.length);
  return n;
}

/** bigint → shortest two's-complement big-endian bytes (or exactly `size` for a fixed). */
function bigintToBytes(n: bigint, size?: number): Buffer {
  let len = 1;
  while (n >= 1n << BigInt(8 * len - 1) || n < -(1n << BigInt(8 * len - 1))) len++;
  if (size !== undefined) {
    if (len > size) throw new Error(`the decimal needs ${len} bytes, more than the fixed size ${size}`);
    len = size;
  }
  const u = BigInt.asUintN(8 * len, n);
  return Buffer.from(u.toString(16).padStart(2 * len, '0'), 'hex');
}

/** Unscaled integer and a scale → decimal text (`1250n, 2` → `"12.50"`). */
export function formatDecimal(unscaled: bigint, scale: number): string {
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString();
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** Decimal text (or number, bigint) → unscaled integer at `scale`; throws when it does not fit. */
export function parseDecimal(value: unknown, scale: number): bigint {
  if (typeof value === 'bigint') return value * 10n ** BigInt(scale);
  if (value instanceof Decimal) {
    const d = value.rescale(scale);
    if (d === undefined)
      throw new Error(`\`${value.toString()}\` has more than the schema's ${scale} fraction digits`);
    return d.units;
  }
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string')
    throw new Error(`a decimal must be a string or a number, not ${typeof value}`);
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (m === null || (m[2] === '' && (m[3] ?? '') === ''))
    throw new Error(`\`${text}\` is not a decimal number`);
  let frac = m[3] ?? '';
  const trimmed = frac.replace(/0+$/, '');
  if (trimmed.length > scale)
    throw new Error(`\`${text}\` has more than the schema's ${scale} fraction digits`);
  frac = frac.padEnd(scale, '0').slice(0, scale);
  const n = BigInt(`${m[2] || '0'}${frac}`);
  return m[1] === '-' ? -n : n;
}

/** Bytes of the shortest two's complement of `n` (|n| < 2^47). */
function intBytes(n: number): number {
  let len = 1;
  while (len < 6 && (n >= 2 ** (8 * len - 1) || n < -(2 ** (8 * len - 1)))) len++;
  return len;
}

const base = avro.types.LogicalType.prototype as unknown as {
  _read(this: avro.types.LogicalType, tap: Tap): unknown;
  _write(this: avro.types.LogicalType, tap: Tap, v: unknown): void;
};

class DecimalType extends avro.types.LogicalType {
  private readonly scale: number;
  private readonly precision: number;
  private readonly size: number | undefined;
  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const s = schema as { scale?: number; precision?: number };
    this.scale = s.scale ?? 0;
    this.precision = s.precision ?? 0;
    const u = this.underlyingType as unknown as { size?: number };
    this.size = typeof u.size === 'number' ? u.size : undefined;
  }
  /** Unscaled integer `n` (|n| < 2^47, exact as a double) → the decimal at the scale. */
  private decimal(n: number): Decimal {
    return new Decimal(BigInt(n), this.scale);
  }
  /**
   * The unscaled integer of short decimal text (`"12.5"` at scale 2 → 1250) when it fits a double
   * exactly (below 2^47) and the precision; else undefined (the exact bigint path decides).
   */
  private shortUnscaled(v: string): number | undefined {
    const len = v.length;
    if (len === 0 || len > 15) return undefined;
    let i = 0;
    const c0 = v.charCodeAt(0);
    if (c0 === 45 /* - */ || c0 === 43 /* + */) i = 1;
    let n = 0;
    let digits = 0;
    let frac = -1;
    for (; i < len; i++) {
      const c = v.charCodeAt(i);
      if (c === 46 /* . */) {
        if (frac !== -1) return undefined;
        frac = 0;
        continue;
      }
      const d = c - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
      digits++;
      if (frac !== -1) frac++;
    }
    if (digits === 0 || frac > this.scale) return undefined;
    for (let k = frac === -1 ? 0 : frac; k < this.scale; k++) n *= 10;
    if (n >= 2 ** 47 || (this.precision > 0 && n >= 10 ** this.precision)) return undefined;
    return c0 === 45 ? -n : n;
  }
  // Bytes-backed decimals read and write their few bytes in place: no Buffer per value.
  _read(tap: Tap): unknown {
    if (this.size !== undefined) return base._read.call(this, tap);
    const len = tap.readLong();
    const at = tap.pos;
    tap.pos += len;
    if (tap.pos > tap.buf.length || len < 0) return undefined; // truncated: avsc says so
    if (len > 0 && len <= 6) return this.decimal(tap.buf.readIntBE(at, len));
    return this._fromValue(tap.buf.subarray(at, tap.pos));
  }
  /** The unscaled integer of `v` when it is short text or a Decimal that fits a double exactly. */
  private short(v: unknown): number | undefined {
    if (this.size !== undefined) return undefined;
    if (typeof v === 'string') return this.shortUnscaled(v);
    if (!(v instanceof Decimal)) return undefined;
    const u = (v.scale === this.scale ? v : v.rescale(this.scale))?.units;
    if (u === undefined || u >= 2n ** 47n || u <= -(2n ** 47n)) return undefined;
    const n = Number(u);
    return this.precision > 0 && Math.abs(n) >= 10 ** this.precision ? undefined : n;
  }
  _write(tap: Tap, v: unknown): void {
    const n = this.short(v);
    if (n === undefined) {
      base._write.call(this, tap, v);
      return;
    }
    const len = intBytes(n);
    tap.writeLong(len);
    const at = tap.pos;
    tap.pos += len;
    if (tap.pos <= tap.buf.length) tap.buf.writeIntBE(n, at, len);
  }
  protected override _fromValue(buf: Buffer): Decimal {
    // Fits a double exactly: no hex detour.
    if (buf.length > 0 && buf.length <= 6) return this.decimal(buf.readIntBE(0, buf.length));
    return new Decimal(bytesToBigint(buf), this.scale);
  }
  protected override _toValue(v: unknown): Buffer | undefined {
    const short = this.short(v);
    if (short !== undefined) {
      const b = Buffer.allocUnsafe(intBytes(short));
      b.writeIntBE(short, 0, b.length);
      return b;
    }
    try {
      const n = parseDecimal(v, this.scale);
      if (this.precision > 0 && (n < 0n ? -n : n).toString().length > this.precision) return undefined;
      return bigintToBytes(n, this.size);
    } catch {
      return undefined;
    }
  }
  protected override _resolve(type: avro.Type): ((v: unknown) => unknown) | undefined {
    if (type instanceof DecimalType) {
      if (type.scale === this.scale) return (v) => v;
      // More digits: exact; fewer: the extra digits are cut (toward zero), as before.
      return (v) =>
        new Decimal(
          parseDecimal(v, Math.max(type.scale, this.scale)) /
            10n ** BigInt(Math.max(0, type.scale - this.scale)),
          this.scale,
        );
    }
    if (avro.Type.isType(type, 'bytes', 'fixed')) return (v) => this._fromValue(v as Buffer);
    return undefined;
  }
}

/** Epoch-µs bigint → ISO text with 6 fraction digits. */
function isoMicros(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const rest = Number(us - ms * 1000n);
  return new Date(Number(ms)).toISOString().replace('Z', `${String(rest).padStart(3, '0')}Z`);
}

/** ISO text / epoch number / Date → epoch µs. */
function toMicros(v: unknown): bigint | undefined {
  if (v instanceof Date) return BigInt(v.getTime()) * 1000n;
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v)) * 1000n;
  if (typeof v === 'bigint') return v * 1000n;
  if (typeof v !== 'string') return undefined;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$/.exec(v);
  // Date.parse rolls 2023-02-29 over to March; the canonical parser checks the day exists.
  if (m === null || Number.isNaN(parseCanonicalIso(`${m[1]?.slice(0, 10)}T00:00:00.000Z`))) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(ms)) return undefined;
  return BigInt(ms) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0').slice(0, 6) || '0');
}

class TimestampMillisType extends avro.types.LogicalType {
  protected override _fromValue(v: number | bigint): string {
    return isoMillis(Number(v));
  }
  protected override _toValue(v: unknown): number | undefined {
    // The form this type writes (`…T12:00:00.123Z`): straight to epoch ms.
    if (typeof v === 'string') {
      const t = parseCanonicalIso(v);
      if (!Number.isNaN(t)) return t;
    }
    const us = toMicros(v);
    return us === undefined ? undefined : Number(us / 1000n);
  }
  protected override _resolve(type: avro.Type): ((v: unknown) => unknown) | undefined {
    if (type instanceof TimestampMillisType) return (v) => v;
    if (type instanceof TimestampMicrosType) return (v) => (v as string).replace(/(\.\d{3})\d{3}Z$/, '$1Z');
    if (avro.Type.isType(type, 'long', 'int')) return (v) => this._fromValue(v as number);
    return undefined;
  }
}

class TimestampMicrosType extends avro.types.LogicalType {
  protected override _fromValue(v: number | bigint): string {
    return isoMicros(BigInt(v));
  }
  protected override _toValue(v: unknown): number | bigint | undefined {
    const us = toMicros(v);
    if (us === undefined) return undefined;
    return us >= MIN_SAFE && us <= MAX_SAFE ? Number(us) : us;
  }
  protected override _resolve(type: avro.Type): ((v: unknown) => unknown) | undefined {
    if (type instanceof TimestampMicrosType) return (v) => v;
    if (type instanceof TimestampMillisType) return (v) => (v as string).replace(/Z$/, '000Z');
    if (avro.Type.isType(type, 'long', 'int')) return (v) => this._fromValue(v as number);
    return undefined;
  }
}

class DateType extends avro.types.LogicalType {
  protected override _fromValue(v: number): string {
    return new Date(v * DAY_MS).toISOString().slice(0, 10);
  }
  protected override _toValue(v: unknown): number | undefined {
    if (typeof v === 'number') return v;
    if (v instanceof Date) return Math.floor(v.getTime() / DAY_MS);
    if (typeof v !== 'string') return undefined;
    const t = Date.parse(`${v.slice(0, 10)}T00:00:00Z`);
    return Number.isFinite(t) ? t / DAY_MS : undefined;
  }
  protected override _resolve(type: avro.Type): ((v: unknown) => unknown) | undefined {
    if (type instanceof DateType) return (v) => v;
    if (avro.Type.isType(type, 'int')) return (v) => this._fromValue(v as number);
    return undefined;
  }
}

const LOGICAL_TYPES = {
  decimal: DecimalType,
  'timestamp-millis': TimestampMillisType,
  'timestamp-micros': TimestampMicrosType,
  date: DateType,
} as unknown as Record<string, new (schema: avro.Schema, opts?: unknown) => avro.types.LogicalType>;

/**
 * The avsc type of an Avro schema (JSON text or parsed), with Sluice's logical types, exact
 * longs and unwrapped unions. `named`: schemas of referenced named types, registered first.
 * Throws avsc's error for an invalid schema.
 *
 * @example
 * avroType('{"type":"record","name":"P","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}');
 */
export function avroType(schema: string | object, named: readonly (string | object)[] = []): avro.Type {
  const registry: Record<string, avro.Type> = {};
  const opts = {
    logicalTypes: LOGICAL_TYPES,
    wrapUnions: false,
    registry,
    typeHook: (s: unknown) =>
      s === 'long' ||
      ((s as { type?: unknown })?.type === 'long' && !(s as { logicalType?: unknown }).logicalType)
        ? exactLong
        : undefined,
  } as unknown as Partial<avro.ForSchemaOptions>;
  for (const n of named) avro.Type.forSchema(typeof n === 'string' ? JSON.parse(n) : n, opts);
  return avro.Type.forSchema(typeof schema === 'string' ? JSON.parse(schema) : schema, opts);
}

export { avro };
