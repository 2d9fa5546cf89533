/**
 * From a Kafka message to a Sluice record: the value decoded by `format`, the origin in `meta`
 * (`position` = `{ topic, partition, offset }`, `key`, `timestamp`, `headers`), and the dead
 * letter of a message whose value cannot be decoded.
 */
import { isUtf8 } from 'node:buffer';
import type { Message } from '@platformatic/kafka';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import { decimalJsonParser } from '../../formats/json.ts';
import { JsonShapes, parseJsonBytes } from '../../formats/json-shape.ts';
import {
  isSchemaFormat,
  SchemaDecodeError,
  type SchemaDecoderOptions,
  type SchemaFormat,
  type SchemaValueDecoder,
  schemaDecoder,
} from '../../formats/schema/codec.ts';
import { ProjectedJson, pickFields } from './projected-json.ts';

/**
 * How a message value becomes a record (source) and a record a message value (sink): `json`,
 * `text`, `raw` bytes, or a schema-registry format (`avro`, `protobuf`, `json-schema`: the
 * Confluent wire format, schemas from the registry).
 */
export type KafkaValueFormat = 'json' | 'text' | 'raw' | SchemaFormat;

/** A source's schema-registry settings (`format: avro | protobuf | json-schema`). */
export type KafkaSchemaOptions = Omit<SchemaDecoderOptions, 'format'>;

/**
 * Message values → records for one source. Call {@link prepare} before {@link decode} for each
 * value and await what it returns (a schema fetch, only for a schema id not seen before);
 * `decode` throws for a value that cannot be decoded, and the caller dead-letters it
 * ({@link undecodableRecord}, {@link undecodableError}).
 */
export class ValueDecoder {
  readonly format: KafkaValueFormat;
  private readonly shapes = new JsonShapes();
  private readonly schema: SchemaValueDecoder | undefined;
  /** `format: json` with `decimals`: the lossless parser (the shape shortcut reads doubles). */
  private readonly exact: ((text: string) => unknown) | undefined;
  /** Set by {@link project}: the fields records keep. */
  private projected: ProjectedJson | undefined;

  constructor(format: KafkaValueFormat, schema?: KafkaSchemaOptions, decimals?: readonly string[]) {
    this.format = format;
    this.exact = format === 'json' ? decimalJsonParser(decimals) : undefined;
    if (isSchemaFormat(format)) {
      if (schema === undefined)
        throw new SluiceError(
          ErrorCode.CONFIG,
          `\`format: ${format}\` needs \`schemaRegistry\` (the registry's URL)`,
        );
      this.schema = schemaDecoder({ ...schema, format });
    }
  }

  /** Undefined, or a promise (never rejecting) to await before {@link decode} of `value`. */
  prepare(value: Buffer | undefined): Promise<void> | undefined {
    return this.schema === undefined || value === undefined || value === null
      ? undefined
      : this.schema.prepare(value);
  }

  /**
   * From now on, `json` records hold only `fields` (those the source's consumers read; see
   * `core/projection.ts`). Other formats keep whole records.
   */
  project(fields: readonly string[]): void {
    if (this.format === 'json' && this.schema === undefined && !fields.includes('__proto__'))
      this.projected = new ProjectedJson(fields);
  }

  /** The record of `value` (a tombstone is `null`); throws when it cannot be decoded. */
  decode(value: Buffer | undefined): unknown {
    if (this.exact !== undefined)
      return value === undefined || value === null ? null : this.exact(value.toString('utf8'));
    const p = this.projected;
    if (p !== undefined && value !== undefined && value !== null)
      return p.parse(value) ?? pickFields(decodeValue(this.format, value, this.shapes), p.fields);
    if (this.schema === undefined) return decodeValue(this.format, value, this.shapes);
    if (value === undefined || value === null) return null;
    return this.schema.decode(value);
  }
}

/** A message as the consumer delivers it (keys, values and headers as bytes). */
export type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;

/**
 * The record of one message value; throws when `json` is not valid JSON. `shapes`: the JSON
 * shapes seen so far by this source (values of one topic tend to share them).
 */
export function decodeValue(
  format: KafkaValueFormat,
  value: Buffer | undefined,
  shapes: JsonShapes,
): unknown {
  if (format === 'raw') return value ?? null;
  if (value === undefined || value === null) return null;
  if (format === 'text') return value.toString('utf8');
  if (format === 'json') return parseJsonBytes(value, shapes);
  throw new SluiceError(ErrorCode.CONFIG, `\`format: ${format}\` decodes through a ValueDecoder`);
}

/**
 * The `meta` of the record read from `m` at `offset` by source stage `source`: its position,
 * timestamp, key and headers (as UTF-8 text).
 */
export function recordMeta(source: string, m: KafkaMessage, offset: number): RecordMeta {
  const meta: {
    source: string;
    position: { topic: string; partition: number; offset: number };
    key?: string;
    timestamp: number;
    headers?: Record<string, string>;
  } = {
    source,
    position: { topic: m.topic, partition: m.partition, offset },
    timestamp: Number(m.timestamp),
  };
  if (m.key) meta.key = m.key.toString('utf8');
  if (m.headerEntries.length > 0) {
    const headers: Record<string, string> = {};
    for (const [k, v] of m.headerEntries) headers[k.toString('utf8')] = v ? v.toString('utf8') : '';
    meta.headers = headers;
  }
  return meta;
}

/**
 * A dead letter's record: the message's bytes, as text when they are valid UTF-8, else base64
 * (always base64 with `binary`: the schema-registry formats).
 */
export function undecodableRecord(
  message: {
    key?: Buffer | undefined;
    value?: Buffer | undefined;
  },
  binary = false,
): Record<string, string | null> {
  const value = message.value ?? null;
  const out: Record<string, string | null> = {};
  if (message.key) out.key = message.key.toString('utf8');
  if (value === null) out.value = null;
  else if (!binary && isUtf8(value)) out.value = value.toString('utf8');
  else out.valueBase64 = value.toString('base64');
  return out;
}

/**
 * The error a message whose value cannot be decoded is dead-lettered with; for the schema-registry
 * formats its context holds the writer's `schemaId` (when the value names one).
 */
export function undecodableError(m: KafkaMessage, offset: number, err: unknown): SluiceError {
  if (err instanceof SchemaDecodeError)
    return new SluiceError(
      ErrorCode.PARSE,
      `undecodable value in topic \`${m.topic}\` partition ${m.partition} offset ${offset}: ${err.message}; the message went to the dlq with its bytes`,
      { ...err.context, topic: m.topic, partition: m.partition, offset },
    );
  return new SluiceError(
    ErrorCode.PARSE,
    `invalid JSON in topic \`${m.topic}\` partition ${m.partition} offset ${offset}: ${(err as Error).message}; the message went to the dlq with its bytes`,
    { topic: m.topic, partition: m.partition, offset },
  );
}
