/**
 * Registry-aware value codecs: message values in the Confluent wire format (see `wire.ts`) to
 * records and back, for `format: avro | protobuf | json-schema` on connectors that carry one
 * value per message (Kafka).
 *
 * Decoding is synchronous per record, fetching is not: a caller first asks
 * {@link SchemaValueDecoder.prepare} for each value and awaits the promise it returns (only when
 * the value names a schema id not seen before: one fetch per id for the decoder's life), then
 * calls {@link SchemaValueDecoder.decode}. A value that cannot be decoded — wrong magic byte,
 * unknown schema id, registry down or refusing the credentials, a writer schema the reader
 * schema cannot resolve, truncated bytes, a message index naming no message — makes `decode`
 * throw a {@link SchemaDecodeError} whose `context` holds `schemaId` (and `readerSchemaId` when
 * known) and whose message gives the reason; the caller dead-letters the raw bytes with it and
 * goes on with the next value. A failed fetch is remembered for {@link FAILED_FETCH_TTL_MS}, so
 * a registry outage costs one backoff sequence per schema id, not one per message.
 */
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { type avro, avroType } from './avro.ts';
import { describeViolation, type JsonSchemaViolation, jsonSchemaCheck } from './json-schema.ts';
import { type ProtobufSchemas, protobufSchemas } from './protobuf.ts';
import {
  type RegisteredSchema,
  SchemaRegistry,
  type SchemaRegistryOptions,
  type SchemaType,
} from './registry.ts';
import { frameHeader, readSchemaId, unframe, WireFormatError } from './wire.ts';

/** The schema-registry formats. */
export type SchemaFormat = 'avro' | 'protobuf' | 'json-schema';

/** Every {@link SchemaFormat}. */
export const SCHEMA_FORMATS: readonly SchemaFormat[] = ['avro', 'protobuf', 'json-schema'];

/** True for a {@link SchemaFormat} name. */
export function isSchemaFormat(format: string): format is SchemaFormat {
  return (SCHEMA_FORMATS as readonly string[]).includes(format);
}

/** How long a schema id whose fetch failed answers with that failure before it is fetched again. */
export const FAILED_FETCH_TTL_MS = 30_000;

/** A value that could not be decoded; `context.schemaId` names the writer schema when it was read. */
export class SchemaDecodeError extends SluiceError {
  constructor(
    message: string,
    context: { schemaId?: number; readerSchemaId?: number; [k: string]: unknown },
  ) {
    super(ErrorCode.PARSE, message, context);
  }
}

/** Decodes message values; see the module comment for the prepare/decode contract. */
export interface SchemaValueDecoder {
  /** Undefined when `decode(bytes)` can run now; else a promise (never rejecting) to await first. */
  prepare(bytes: Uint8Array): Promise<void> | undefined;
  /** The record of `bytes`; throws a {@link SchemaDecodeError}. */
  decode(bytes: Uint8Array): unknown;
}

/** Encodes records as message values with the schema the sink declares. */
export interface SchemaValueEncoder {
  /** Resolves the subject's schema id (registering the schema when asked to); call once before `encode`. */
  open(): Promise<void>;
  /** The framed value of `record`; throws an Error saying why the record does not fit the schema. */
  encode(record: unknown): Buffer;
  /** The id values are framed with (after `open`). */
  readonly schemaId: number;
}

/** What the decoder of one source needs. */
export interface SchemaDecoderOptions {
  readonly format: SchemaFormat;
  readonly registry: SchemaRegistry | SchemaRegistryOptions;
  /** Avro: the reader schema (JSON text) every writer schema is resolved against; default: the writer's. */
  readonly readerSchema?: string | undefined;
  /** Protobuf: a FileDescriptorSet (bytes) to decode with instead of the registry's schema. */
  readonly descriptorSet?: Uint8Array | undefined;
  /** Protobuf with `descriptorSet`: the full name of the message type (default: from the message indexes). */
  readonly messageType?: string | undefined;
}

/** How one writer schema id decodes. */
type Reader =
  | {
      /** The value of `framed` from byte `start` (the payload; Protobuf message indexes before it). */
      readonly decode: (framed: Uint8Array, start: number, indexes: readonly number[] | undefined) => unknown;
    }
  | { readonly error: string; readonly at: number; readonly readerSchemaId?: number | undefined };

function registryOf(r: SchemaRegistry | SchemaRegistryOptions): SchemaRegistry {
  return r instanceof SchemaRegistry ? r : new SchemaRegistry(r);
}

/**
 * A decoder for one source (keep one per source: it caches a reader per schema id).
 *
 * @example
 * const d = schemaDecoder({ format: 'avro', registry: { url: 'http://127.0.0.1:8081/apis/ccompat/v7' } });
 * await d.prepare(bytes);
 * const record = d.decode(bytes);
 */
export function schemaDecoder(options: SchemaDecoderOptions): SchemaValueDecoder {
  const registry = registryOf(options.registry);
  const protobuf = options.format === 'protobuf';
  const readers = new Map<number, Reader>();
  const pending = new Map<number, Promise<void>>();
  const readerType =
    options.readerSchema !== undefined && options.format === 'avro'
      ? avroType(options.readerSchema)
      : undefined;
  const fixedProto =
    options.descriptorSet !== undefined
      ? protobufSchemas({ descriptorSet: options.descriptorSet })
      : undefined;

  async function build(id: number): Promise<Reader> {
    let writer: RegisteredSchema;
    try {
      writer = await registry.schemaById(id);
    } catch (err) {
      return { error: (err as Error).message, at: Date.now() };
    }
    try {
      if (options.format === 'avro') {
        if (writer.schemaType !== 'AVRO')
          return { error: `schema id ${id} is ${writer.schemaType}, not Avro`, at: Infinity };
        const refs = await registry.references(writer.references);
        const wt = avroType(
          writer.schema,
          [...refs.values()].map((r) => r.schema),
        );
        const reader = readerType ?? wt;
        let resolver: avro.Resolver | undefined;
        if (readerType !== undefined) {
          try {
            resolver = readerType.createResolver(wt);
          } catch (err) {
            const readerId = await registry.idOf('AVRO', options.readerSchema as string, id);
            return {
              error: `the writer schema (id ${id}) cannot be read with the reader schema (${readerId === undefined ? 'not registered' : `id ${readerId}`}): ${(err as Error).message}`,
              at: Infinity,
              readerSchemaId: readerId,
            };
          }
        }
        // `decode` at an offset: no view of the payload per value; truncated and trailing bytes are
        // refused as `fromBuffer` refuses them.
        return {
          decode: (framed, start) => {
            const r = reader.decode(framed as Buffer, start, resolver);
            if (r.offset < 0) throw new Error('truncated buffer');
            if (r.offset !== framed.length)
              throw new Error(`trailing data (${framed.length - r.offset} bytes after the value)`);
            return r.value;
          },
        };
      }
      if (protobuf) {
        if (fixedProto !== undefined)
          return {
            decode: (f, start, ix) => fixedProto.decode(f.subarray(start), ix, options.messageType),
          };
        if (writer.schemaType !== 'PROTOBUF')
          return { error: `schema id ${id} is ${writer.schemaType}, not Protobuf`, at: Infinity };
        const refs = await registry.references(writer.references);
        const schemas: ProtobufSchemas = protobufSchemas({
          proto: writer.schema,
          imports: new Map([...refs].map(([k, v]) => [k, v.schema])),
        });
        return { decode: (f, start, ix) => schemas.decode(f.subarray(start), ix, options.messageType) };
      }
      if (writer.schemaType !== 'JSON')
        return { error: `schema id ${id} is ${writer.schemaType}, not JSON Schema`, at: Infinity };
      const check = jsonSchemaCheck(writer.schema);
      return {
        decode: (f, start) => {
          const value: unknown = JSON.parse(
            Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('utf8', start),
          );
          const bad = check(value);
          if (bad !== undefined) throw new JsonSchemaMismatch(bad);
          return value;
        },
      };
    } catch (err) {
      return { error: `schema id ${id} cannot be used: ${(err as Error).message}`, at: Infinity };
    }
  }

  function idOf(bytes: Uint8Array): number | undefined {
    if (bytes.length < 5 || bytes[0] !== 0) return undefined;
    return (
      ((bytes[1] as number) << 24) |
      ((bytes[2] as number) << 16) |
      ((bytes[3] as number) << 8) |
      (bytes[4] as number)
    );
  }

  return {
    prepare(bytes) {
      const id = idOf(bytes);
      if (id === undefined) return undefined;
      const r = readers.get(id);
      if (r !== undefined && !('error' in r && Date.now() - r.at > FAILED_FETCH_TTL_MS)) return undefined;
      let p = pending.get(id);
      if (p === undefined) {
        p = build(id).then((reader) => {
          readers.set(id, reader);
          pending.delete(id);
        });
        pending.set(id, p);
      }
      return p;
    },
    decode(bytes) {
      let id: number;
      let start = 5;
      let indexes: readonly number[] | undefined;
      try {
        if (protobuf) {
          const framed = unframe(bytes, true);
          id = framed.schemaId;
          start = bytes.length - framed.payload.length;
          indexes = framed.indexes;
        } else id = readSchemaId(bytes);
      } catch (err) {
        const ctx: { schemaId?: number } = {};
        const id = idOf(bytes);
        if (id !== undefined) ctx.schemaId = id;
        throw new SchemaDecodeError((err as Error).message, ctx);
      }
      const reader = readers.get(id);
      if (reader === undefined)
        throw new SchemaDecodeError(`schema id ${id} was not fetched (call prepare first)`, { schemaId: id });
      if ('error' in reader) {
        const context: { schemaId: number; readerSchemaId?: number } = { schemaId: id };
        if (reader.readerSchemaId !== undefined) context.readerSchemaId = reader.readerSchemaId;
        throw new SchemaDecodeError(reader.error, context);
      }
      try {
        return reader.decode(bytes, start, indexes);
      } catch (err) {
        if (err instanceof JsonSchemaMismatch)
          throw new SchemaDecodeError(
            `the value does not match its JSON Schema (id ${id}) ${describeViolation(err.violation)}`,
            { schemaId: id, pointer: err.violation.pointer, keyword: err.violation.keyword },
          );
        const e =
          err instanceof WireFormatError
            ? err.message
            : `the payload does not decode with writer schema id ${id} (truncated, or not written with that schema): ${(err as Error).message}`;
        throw new SchemaDecodeError(e, { schemaId: id });
      }
    },
  };
}

/** How a sink names the subject its schema is registered under. */
export type SubjectStrategy = 'topic' | 'record' | 'topic-record';

/** What the encoder of one sink needs. */
export interface SchemaEncoderOptions {
  readonly format: SchemaFormat;
  readonly registry: SchemaRegistry | SchemaRegistryOptions;
  /** Topic (for the `topic` and `topic-record` strategies). */
  readonly topic: string;
  /** The writer schema text (Avro JSON, `.proto` source, JSON Schema); default: the subject's registered one. */
  readonly schema?: string | undefined;
  /** Default `topic`: subject `<topic>-value`. */
  readonly subjectStrategy?: SubjectStrategy | undefined;
  /** An explicit subject (overrides the strategy). */
  readonly subject?: string | undefined;
  /** Register `schema` when the subject lacks it. Default false: look it up. */
  readonly autoRegister?: boolean | undefined;
  /** Without auto-registration: `latest` (default) or a pinned version number. */
  readonly version?: number | 'latest' | undefined;
  /** Protobuf: full name of the message type (default: the schema's first message). */
  readonly messageType?: string | undefined;
}

const SCHEMA_TYPE: Record<SchemaFormat, SchemaType> = {
  avro: 'AVRO',
  protobuf: 'PROTOBUF',
  'json-schema': 'JSON',
};

/** The record name a schema declares, for the `record` strategies. */
function recordName(format: SchemaFormat, schema: string, messageType: string | undefined): string {
  if (format === 'avro') {
    const s = JSON.parse(schema) as { name?: string; namespace?: string };
    if (typeof s.name !== 'string') throw new Error('the Avro schema has no name');
    return s.name.includes('.') || !s.namespace ? s.name : `${s.namespace}.${s.name}`;
  }
  if (format === 'protobuf') return messageType ?? protobufSchemas({ proto: schema }).typeName([0]);
  const j = JSON.parse(schema) as { title?: string };
  if (typeof j.title !== 'string') throw new Error('the JSON Schema has no `title` to name its record');
  return j.title;
}

/**
 * An encoder for one sink.
 *
 * @example
 * const e = schemaEncoder({ format: 'avro', registry: { url }, topic: 'payments', schema, autoRegister: true });
 * await e.open();
 * producer.send({ topic: 'payments', value: e.encode(record) });
 */
export function schemaEncoder(options: SchemaEncoderOptions): SchemaValueEncoder {
  const registry = registryOf(options.registry);
  let id = -1;
  let write: ((record: unknown) => Buffer) | undefined;
  return {
    get schemaId() {
      return id;
    },
    async open() {
      let schema = options.schema;
      const strategy = options.subjectStrategy ?? 'topic';
      let subject = options.subject;
      if (subject === undefined) {
        if (strategy === 'topic') subject = `${options.topic}-value`;
        else {
          if (schema === undefined)
            throw new SluiceError(
              ErrorCode.CONFIG,
              `subject strategy \`${strategy}\` needs the sink's \`schema\` to name the record`,
            );
          const name = recordName(options.format, schema, options.messageType);
          subject = strategy === 'record' ? name : `${options.topic}-${name}`;
        }
      }
      if (options.autoRegister === true) {
        if (schema === undefined)
          throw new SluiceError(ErrorCode.CONFIG, '`autoRegister` needs the sink’s `schema`');
        id = await registry.register(subject, SCHEMA_TYPE[options.format], schema);
      } else {
        const found = await registry.subjectVersion(subject, options.version ?? 'latest');
        id = found.id;
        schema ??= found.schema;
      }
      if (options.format === 'avro') {
        const type = avroType(schema);
        // Encoded behind the header in one scratch buffer, then copied out once (no concat).
        let scratch = Buffer.allocUnsafe(64 * 1024);
        frameHeader(id).copy(scratch);
        write = (record) => {
          let end = type.encode(record, scratch, 5);
          while (end < 0) {
            const bigger = Buffer.allocUnsafe(scratch.length * 2 - end);
            scratch.copy(bigger, 0, 0, 5);
            scratch = bigger;
            end = type.encode(record, scratch, 5);
          }
          const out = Buffer.allocUnsafe(end);
          scratch.copy(out, 0, 0, end);
          return out;
        };
      } else if (options.format === 'protobuf') {
        const schemas = protobufSchemas({ proto: schema });
        const indexes = schemas.indexesOf(options.messageType);
        const header = frameHeader(id, indexes);
        const type = options.messageType;
        write = (record) => {
          const body = schemas.encode(record, type);
          const out = Buffer.allocUnsafe(header.length + body.length);
          out.set(header, 0);
          out.set(body, header.length);
          return out;
        };
      } else {
        const header = frameHeader(id);
        const check = jsonSchemaCheck(schema);
        const schemaId = id;
        write = (record) => {
          const text = JSON.stringify(record, bigintText);
          // The record as it is, and when that fails, as the JSON written (bigints, decimals and
          // dates are text there): the bytes on the wire are what the schema speaks about.
          const bad = check(record) && check(text === undefined ? undefined : JSON.parse(text));
          if (bad !== undefined)
            throw new SluiceError(
              ErrorCode.RECORD,
              `the record does not match the JSON Schema (id ${schemaId}) ${describeViolation(bad)}`,
              { schemaId, pointer: bad.pointer, keyword: bad.keyword },
            );
          return Buffer.concat([header, Buffer.from(text, 'utf8')]);
        };
      }
    },
    encode(record) {
      if (write === undefined) throw new Error('schema encoder used before open()');
      return write(record);
    },
  };
}

/** A decoded value its JSON Schema rejects (turned into a {@link SchemaDecodeError} by `decode`). */
class JsonSchemaMismatch extends Error {
  readonly violation: JsonSchemaViolation;
  constructor(violation: JsonSchemaViolation) {
    super(violation.message);
    this.violation = violation;
  }
}

/** `JSON.rawJSON` (V8 11.4+, Node 21+): a value written as the given JSON text. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** Bigints (64-bit integers beyond 2^53) as JSON numbers with every digit, as JSON Schema `integer` wants them. */
function bigintText(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? rawJSON(v.toString()) : v;
}
