/**
 * The `kafka` sink's request builder: a record (and its `meta`) becomes one message — value by
 * `format`, key from the `key` field or the key the record came with, headers passed on — and a
 * dead letter becomes the failed message as it came in (`deadLetters: original`).
 */
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import type { DeadLetter } from '../../core/stage.ts';
import { toJsonLine } from '../../formats/jsonl.ts';
import {
  isSchemaFormat,
  type SchemaEncoderOptions,
  type SchemaValueEncoder,
  schemaEncoder,
} from '../../formats/schema/codec.ts';
import { deadLetterMessage, isDeadLetter } from './dead-letters.ts';
import type { KafkaValueFormat } from './records.ts';

/** A sink's schema-registry settings (`format: avro | protobuf | json-schema`). */
export type KafkaSinkSchemaOptions = Omit<SchemaEncoderOptions, 'format' | 'topic'>;

/** One message to produce (keys, values and header names as bytes). */
export interface OutMessage {
  topic: string;
  key?: Buffer;
  value: Buffer;
  headers?: Map<Buffer, Buffer>;
}

/** Distinct message keys whose bytes an encoder keeps (cleared when full). */
const KEY_CACHE_SIZE = 8192;

/** What shapes the messages of one sink. */
export interface EncoderOptions {
  readonly topic: string;
  readonly format: KafkaValueFormat;
  /** Record field whose value is the key; default the record's `meta.key`. */
  readonly key?: string | undefined;
  /** Pass `meta.headers` on. */
  readonly keepHeaders: boolean;
  /** `original`: dead letters are written as the failed message plus `sluice.*` headers. */
  readonly deadLetters?: 'original' | 'envelope' | undefined;
  /** With `format: avro | protobuf | json-schema`: the registry, the schema and its subject. */
  readonly schema?: KafkaSinkSchemaOptions | undefined;
}

/** Bytes of a Buffer, Uint8Array or string (anything else as its string). */
export function toBytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.from(typeof value === 'string' ? value : String(value), 'utf8');
}

/** Turns records into messages for one topic; see the module comment. */
export class MessageEncoder {
  /** Message keys (user ids, Kafka → Kafka keys) and header names repeat: their bytes are made once. */
  private readonly keyCache = new Map<string, Buffer>();
  private readonly options: EncoderOptions;
  private readonly schema: SchemaValueEncoder | undefined;

  constructor(options: EncoderOptions) {
    this.options = options;
    if (isSchemaFormat(options.format)) {
      if (options.schema === undefined)
        throw new SluiceError(
          ErrorCode.CONFIG,
          `\`format: ${options.format}\` needs \`schemaRegistry\` (the registry's URL)`,
        );
      this.schema = schemaEncoder({ ...options.schema, format: options.format, topic: options.topic });
    }
  }

  /**
   * Called once before the first {@link encode}: with a schema-registry format, finds the
   * subject's schema id (registering the schema when `autoRegister`). Throws the registry's
   * error (an incompatible schema is a 409 saying so).
   */
  async open(): Promise<void> {
    await this.schema?.open();
  }

  /**
   * The message of `record`, or, when the record lacks the `key` field, the reason (a string)
   * for the caller to dead-letter it with.
   */
  encode(record: unknown, meta: RecordMeta | undefined): OutMessage | string {
    const { topic, format, key } = this.options;
    if (this.options.deadLetters === 'original' && isDeadLetter(record))
      return this.encodeDeadLetter(record, meta);
    let value: Buffer;
    if (this.schema !== undefined) {
      try {
        value = this.schema.encode(record);
      } catch (err) {
        return `the record does not fit the ${format} schema (id ${this.schema.schemaId}) of topic \`${topic}\`: ${(err as Error).message}`;
      }
    } else if (format === 'json') value = Buffer.from(toJsonLine(record), 'utf8');
    else if (format === 'text')
      value = Buffer.from(typeof record === 'string' ? record : toJsonLine(record), 'utf8');
    else value = toBytes(record);
    const msg: OutMessage = { topic, value };
    if (key !== undefined) {
      const k = (record as Record<string, unknown> | null)?.[key];
      if (k === undefined || k === null)
        return `the record has no field \`${key}\` for the key of its message to topic \`${topic}\`; give every record that field, or leave out \`key\` to keep the key the record came with`;
      msg.key = toBytes(typeof k === 'object' && !(k instanceof Uint8Array) ? toJsonLine(k) : k);
    } else if (meta?.key !== undefined) {
      msg.key = typeof meta.key === 'string' ? this.keyBytes(meta.key) : toBytes(meta.key);
    }
    if (this.options.keepHeaders && meta?.headers !== undefined) msg.headers = this.headersOf(meta);
    return msg;
  }

  /** A dead letter as the original message plus `sluice.*` headers (`deadLetters: original`). */
  private encodeDeadLetter(letter: DeadLetter, meta: RecordMeta | undefined): OutMessage {
    const { value, headers: added } = deadLetterMessage(letter, toJsonLine);
    const msg: OutMessage = { topic: this.options.topic, value };
    if (meta?.key !== undefined)
      msg.key = typeof meta.key === 'string' ? this.keyBytes(meta.key) : toBytes(meta.key);
    const headers = this.headersOf(meta);
    for (const [k, v] of added) headers.set(Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8'));
    msg.headers = headers;
    return msg;
  }

  private keyBytes(key: string): Buffer {
    let bytes = this.keyCache.get(key);
    if (bytes === undefined) {
      bytes = Buffer.from(key, 'utf8');
      if (this.keyCache.size >= KEY_CACHE_SIZE) this.keyCache.clear();
      this.keyCache.set(key, bytes);
    }
    return bytes;
  }

  /** `meta`'s headers as the client takes them (without serializers, names are bytes too). */
  private headersOf(meta: RecordMeta | undefined): Map<Buffer, Buffer> {
    const headers = new Map<Buffer, Buffer>();
    if (meta?.headers !== undefined)
      for (const k in meta.headers) headers.set(this.keyBytes(k), toBytes(meta.headers[k]));
    return headers;
  }
}
