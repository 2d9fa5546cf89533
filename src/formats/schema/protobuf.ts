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
 * Records hold (the proto3 JSON mapping, made natural; converters and encoding coercions in
 * `protobuf-values.ts`):
 * - 64-bit integers: numbers when they fit in ±2^53, else bigints (exact; JSON writers print those as strings);
 * - enums: their names; bytes: base64 text; unset scalars: their defaults; unset messages: null;
 * - `google.protobuf.Timestamp`: ISO-8601 UTC text (3, 6 or 9 fraction digits);
 *   `Duration`: `"1.500s"`; the wrappers (`Int64Value`…): their value; `Struct`/`Value`/
 *   `ListValue`: objects, values and arrays; `Empty`: `{}`;
 * - `google.type.Decimal` (`{ value: "12.50" }`): a `Decimal` (core/decimal.ts), printed by JSON
 *   writers as its exact text.
 */
import protobuf from 'protobufjs';
import 'protobufjs/ext/descriptor/index.js';
import { toMessage, toPlain } from './protobuf-values.ts';

const WKT_FILES = [
  'google/protobuf/timestamp.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/wrappers.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/any.proto',
  'google/protobuf/field_mask.proto',
];
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

  const first = main.top[0];
  const byName = new Map<string, protobuf.Type>();

  function typeAt(indexes: readonly number[]): protobuf.Type {
    // The common case, the first message, without building a key.
    if (indexes.length === 1 && indexes[0] === 0 && first !== undefined) return first;
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
    if (name !== undefined) {
      let t = byName.get(name);
      if (t === undefined) {
        t = root.lookupType(name);
        byName.set(name, t);
      }
      return t;
    }
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
      return toPlain(t)(t.decode(payload)) as Record<string, unknown>;
    },
    encode(record, name) {
      const t = typeOf(name, undefined);
      return t.encode(toMessage(t)(record, '') as Record<string, unknown>).finish();
    },
  };
}
