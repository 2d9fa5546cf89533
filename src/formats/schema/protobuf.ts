/**
 * Protobuf without generated code: message types built at run time from `.proto` source (what a
 * schema registry returns, with its references as imports) or from a FileDescriptorSet file, and
 * values converted to and from natural JSON records.
 *
 * Library, by measurement (shared/LIBRARIES.md, Node 24): `protobufjs` 8 parses `.proto` text at
 * run time (0.25 ms a schema) and decodes 1.8 M messages/s raw, 1.1 M/s to plain objects;
 * `@bufbuild/protobuf` 2 decodes 0.75 M/s and cannot read `.proto` text — and Apicurio returns
 * Protobuf schemas reliably only as text (its `?format=serialized` bytes are mangled).
 *
 * Records hold (the proto3 JSON mapping, made natural):
 * - 64-bit integers: numbers when they fit in ±2^53, else bigints (exact; JSON writers print those as strings);
 * - enums: their names; bytes: base64 text; unset scalars: their defaults; unset messages: null;
 * - `google.protobuf.Timestamp`: ISO-8601 UTC text (3, 6 or 9 fraction digits);
 *   `Duration`: `"1.500s"`; the wrappers (`Int64Value`…): their value; `Struct`/`Value`/
 *   `ListValue`: objects, values and arrays; `Empty`: `{}`;
 * - `google.type.Decimal` (`{ value: "12.50" }`): the exact decimal string (a first-class
 *   Decimal type is being added to Sluice; decimal strings stand for it until then).
 */
import protobuf from 'protobufjs';
import 'protobufjs/ext/descriptor/index.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const WKT_FILES = [
  'google/protobuf/timestamp.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/wrappers.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/any.proto',
  'google/protobuf/field_mask.proto',
];
/** The wrapper messages (`Int64Value`…), each holding one `value`. */
const WRAPPERS = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map(
    (t) => `.google.protobuf.${t}Value`,
  ),
);
const GOOGLE_TYPE_DECIMAL = 'syntax = "proto3"; package google.type; message Decimal { string value = 1; }';

/** Message types of one schema and the conversions of their values. */
export interface ProtobufSchemas {
  /** The full name of the message `indexes` names (see the wire format); throws for an index naming none. */
  typeName(indexes: readonly number[]): string;
  /** The message indexes of `typeName` (default: the first message). */
  indexesOf(typeName: string | undefined): number[];
  /** The record of `payload`, a message of the type `typeName` or `indexes` names. */
  decode(
    payload: Uint8Array,
    indexes: readonly number[] | undefined,
    typeName?: string,
  ): Record<string, unknown>;
  /** The bytes of `record` as a message of `typeName` (default: the first message). */
  encode(record: unknown, typeName?: string): Uint8Array;
}

/** A schema: `.proto` source plus its imports by path, or a FileDescriptorSet. */
export type ProtobufSource =
  | { readonly proto: string; readonly imports?: ReadonlyMap<string, string> }
  | { readonly descriptorSet: Uint8Array };

function withWellKnownTypes(root: protobuf.Root): protobuf.Root {
  for (const f of WKT_FILES) {
    const json = protobuf.common.get(f);
    if (
      json?.nested !== undefined &&
      root.lookup(`google.protobuf.${f.split('/')[2]?.split('.')[0]}`) === null
    ) {
      try {
        root.addJSON(json.nested);
      } catch {
        // already there (another file declared it)
      }
    }
  }
  return root;
}

/** The top-level message names of one file, in declaration order (what message indexes count). */
interface FileMessages {
  readonly pkg: string;
  readonly top: readonly protobuf.Type[];
}

function topMessages(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
}

/**
 * The message types of `source`, resolved (imports must be among `imports` or well-known types).
 * Throws protobufjs's error for invalid source.
 *
 * @example
 * protobufSchemas({ proto: 'syntax = "proto3"; message P { int64 id = 1; }' }).decode(bytes, [0]);
 */
export function protobufSchemas(source: ProtobufSource): ProtobufSchemas {
  let root: protobuf.Root;
  let main: FileMessages;
  if ('descriptorSet' in source) {
    root = withWellKnownTypes(
      (
        protobuf.Root as unknown as { fromDescriptor(b: Uint8Array, o?: object): protobuf.Root }
      ).fromDescriptor(source.descriptorSet, { keepCase: true }),
    );
    // The main file of a set is conventionally its last: message indexes count its messages.
    const set = (
      protobuf as unknown as { descriptor: { FileDescriptorSet: protobuf.Type } }
    ).descriptor.FileDescriptorSet.decode(source.descriptorSet) as unknown as {
      file: { package?: string; messageType?: { name: string }[] }[];
    };
    const last = set.file[set.file.length - 1];
    const pkg = last?.package ?? '';
    const top = (last?.messageType ?? []).map((m) => root.lookupType(pkg ? `${pkg}.${m.name}` : m.name));
    main = { pkg, top };
  } else {
    root = withWellKnownTypes(new protobuf.Root());
    protobuf.parse(GOOGLE_TYPE_DECIMAL, root, { keepCase: true });
    const parsed = new Set<string>();
    const addFile = (path: string, text: string) => {
      if (parsed.has(path)) return;
      parsed.add(path);
      const r = protobuf.parse(text, root, { keepCase: true });
      for (const imp of [...(r.imports ?? []), ...(r.weakImports ?? [])]) {
        if (imp.startsWith('google/protobuf/') || imp === 'google/type/decimal.proto') continue;
        const dep = source.imports?.get(imp);
        if (dep === undefined)
          throw new Error(`the schema imports \`${imp}\`, which is not among its references`);
        addFile(imp, dep);
      }
    };
    addFile('<main>', source.proto);
    const alone = protobuf.parse(source.proto, new protobuf.Root(), { keepCase: true });
    const pkg = alone.package ?? '';
    const ns = pkg ? alone.root.lookup(pkg) : alone.root;
    const names =
      ns instanceof protobuf.Namespace || ns instanceof protobuf.Root
        ? topMessages(ns).map((t) => t.name)
        : [];
    main = { pkg, top: names.map((n) => root.lookupType(pkg ? `${pkg}.${n}` : n)) };
  }
  root.resolveAll();
  const byIndexes = new Map<string, protobuf.Type>();

  function typeAt(indexes: readonly number[]): protobuf.Type {
    const key = indexes.join(',');
    let t = byIndexes.get(key);
    if (t !== undefined) return t;
    let list: readonly protobuf.Type[] = main.top;
    for (const i of indexes) {
      t = list[i];
      if (t === undefined)
        throw new Error(
          `message index [${indexes.join(', ')}] names no message of the schema (it has ${main.top.length} top-level messages)`,
        );
      list = topMessages(t);
    }
    if (t === undefined) throw new Error('empty message index');
    byIndexes.set(key, t);
    return t;
  }

  function typeOf(name: string | undefined, indexes: readonly number[] | undefined): protobuf.Type {
    if (name !== undefined) return root.lookupType(name);
    return typeAt(indexes ?? [0]);
  }

  return {
    typeName(indexes) {
      return typeAt(indexes).fullName.slice(1);
    },
    indexesOf(name) {
      if (name === undefined) return [0];
      const target = root.lookupType(name);
      const path: number[] = [];
      const walk = (list: readonly protobuf.Type[]): boolean => {
        for (let i = 0; i < list.length; i++) {
          path.push(i);
          if (list[i] === target || walk(topMessages(list[i] as protobuf.Type))) return true;
          path.pop();
        }
        return false;
      };
      if (!walk(main.top))
        throw new Error(`message type \`${name}\` is not declared in the schema's main file`);
      return path;
    },
    decode(payload, indexes, name) {
      const t = typeOf(name, indexes);
      return messageToPlain(t, t.decode(payload)) as Record<string, unknown>;
    },
    encode(record, name) {
      const t = typeOf(name, undefined);
      const obj = plainToObject(t, record) as Record<string, unknown>;
      return t.encode(t.fromObject(obj)).finish();
    },
  };
}

function longValue(v: unknown): number | bigint {
  if (typeof v === 'number') return v;
  const n = BigInt(String(v));
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

function isoFromSeconds(seconds: number | bigint, nanos: number): string {
  const ms = Number(seconds) * 1000 + Math.floor(nanos / 1e6);
  const base = new Date(ms).toISOString();
  const sub = nanos % 1e6;
  if (sub === 0) return base;
  const digits = String(nanos).padStart(9, '0');
  return base.replace(/\.\d{3}Z$/, `.${sub % 1000 === 0 ? digits.slice(0, 6) : digits}Z`);
}

function scalarToPlain(field: protobuf.Field, v: unknown): unknown {
  if (field.resolvedType instanceof protobuf.Enum) {
    return field.resolvedType.valuesById[v as number] ?? v;
  }
  if (field.resolvedType instanceof protobuf.Type)
    return v === null || v === undefined ? null : messageToPlain(field.resolvedType, v);
  if (LONG_TYPES.has(field.type)) return longValue(v);
  if (field.type === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  return v;
}

/** A decoded protobufjs message → a plain record (see the module comment). */
function messageToPlain(type: protobuf.Type, msg: unknown): unknown {
  const m = msg as Record<string, unknown>;
  if (WRAPPERS.has(type.fullName)) return scalarToPlain(type.fields.value as protobuf.Field, m.value);
  switch (type.fullName) {
    case '.google.protobuf.Timestamp':
      return isoFromSeconds(longValue(m.seconds ?? 0), (m.nanos as number) ?? 0);
    case '.google.protobuf.Duration': {
      const s = BigInt(String(m.seconds ?? 0));
      const n = (m.nanos as number) ?? 0;
      const total = s * 1_000_000_000n + BigInt(n);
      const neg = total < 0n;
      const abs = neg ? -total : total;
      return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n)
        .padStart(9, '0')
        .replace(/(\d{3})0{6}$|(\d{6})0{3}$/, '$1$2')}s`;
    }
    case '.google.protobuf.Struct': {
      const out: Record<string, unknown> = {};
      const fields = (m.fields ?? {}) as Record<string, unknown>;
      const vt = (type.fields.fields as protobuf.Field).resolvedType as protobuf.Type;
      for (const k of Object.keys(fields)) out[k] = messageToPlain(vt, fields[k]);
      return out;
    }
    case '.google.protobuf.Value': {
      const kind = (m as { kind?: string }).kind;
      if (kind === undefined || kind === 'nullValue') return null;
      const f = type.fields[kind] as protobuf.Field;
      return scalarToPlain(f, m[kind]);
    }
    case '.google.protobuf.ListValue': {
      const vt = (type.fields.values as protobuf.Field).resolvedType as protobuf.Type;
      return ((m.values ?? []) as unknown[]).map((v) => messageToPlain(vt, v));
    }
    case '.google.type.Decimal':
      return m.value ?? '';
  }
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const name = field.name;
    const v = m[name];
    if (field.partOf !== null && field.partOf.oneof.length > 0 && !Object.hasOwn(m, name)) continue;
    if (field.map) {
      const o: Record<string, unknown> = {};
      const src = (v ?? {}) as Record<string, unknown>;
      for (const k of Object.keys(src)) o[k] = scalarToPlain(field, src[k]);
      out[name] = o;
    } else if (field.repeated) {
      out[name] = ((v ?? []) as unknown[]).map((x) => scalarToPlain(field, x));
    } else out[name] = scalarToPlain(field, v);
  }
  return out;
}

function scalarToObject(field: protobuf.Field, v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (field.resolvedType instanceof protobuf.Type) return plainToObject(field.resolvedType, v);
  if (typeof v === 'bigint') return v.toString();
  return v;
}

function toTimestamp(v: unknown): { seconds: string; nanos: number } {
  if (v instanceof Date) v = v.toISOString();
  if (typeof v === 'number')
    return { seconds: String(Math.floor(v / 1000)), nanos: (((v % 1000) + 1000) % 1000) * 1e6 };
  const m = typeof v === 'string' ? /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$/.exec(v) : null;
  const ms = m === null ? Number.NaN : Date.parse(`${m[1]}${m[3]}`);
  if (m === null || !Number.isFinite(ms)) throw new Error(`\`${String(v)}\` is not an ISO-8601 time`);
  return { seconds: String(ms / 1000), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** A plain record → the object form protobufjs's `fromObject` takes (well-known types expanded). */
function plainToObject(type: protobuf.Type, value: unknown): unknown {
  if (WRAPPERS.has(type.fullName)) return { value: typeof value === 'bigint' ? value.toString() : value };
  switch (type.fullName) {
    case '.google.protobuf.Timestamp':
      return toTimestamp(value);
    case '.google.protobuf.Duration': {
      const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(String(value));
      if (m === null) throw new Error(`\`${String(value)}\` is not a duration such as \`1.5s\``);
      const sign = m[1] === '-' ? -1 : 1;
      return { seconds: `${m[1]}${m[2]}`, nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
    }
    case '.google.protobuf.Struct': {
      const vt = (type.fields.fields as protobuf.Field).resolvedType as protobuf.Type;
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) fields[k] = plainToObject(vt, v);
      return { fields };
    }
    case '.google.protobuf.Value':
      if (value === null || value === undefined) return { nullValue: 0 };
      if (typeof value === 'number') return { numberValue: value };
      if (typeof value === 'string') return { stringValue: value };
      if (typeof value === 'boolean') return { boolValue: value };
      if (Array.isArray(value)) return { listValue: { values: value.map((x) => plainToObject(type, x)) } };
      return { structValue: plainToObject(type.root.lookupType('google.protobuf.Struct'), value) };
    case '.google.protobuf.ListValue':
      return {
        values: (value as unknown[]).map((x) =>
          plainToObject(type.root.lookupType('google.protobuf.Value'), x),
        ),
      };
    case '.google.type.Decimal':
      return { value: String(value) };
  }
  if (value === null || typeof value !== 'object')
    throw new Error(
      `message \`${type.fullName.slice(1)}\` needs an object, not ${value === null ? 'null' : typeof value}`,
    );
  const src = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = src[field.name];
    if (v === undefined || v === null) continue;
    if (field.map) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = scalarToObject(field, x);
      out[field.name] = o;
    } else if (field.repeated) out[field.name] = (v as unknown[]).map((x) => scalarToObject(field, x));
    else out[field.name] = scalarToObject(field, v);
  }
  return out;
}
