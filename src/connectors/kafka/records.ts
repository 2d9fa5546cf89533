/**
 * From a Kafka message to a Sluice record: the value decoded by `format`, the origin in `meta`
 * (`position` = `{ topic, partition, offset }`, `key`, `timestamp`, `headers`), and the dead
 * letter of a message whose value cannot be decoded.
 */
import { isUtf8 } from 'node:buffer';
import type { Message } from '@platformatic/kafka';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import { type JsonShapes, parseJsonBytes } from '../../formats/json-shape.ts';

/** How a message value becomes a record (source) and a record a message value (sink). */
export type KafkaValueFormat = 'json' | 'text' | 'raw';

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
  return format === 'text' ? value.toString('utf8') : parseJsonBytes(value, shapes);
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

/** A dead letter's record: the message's bytes, as text when they are valid UTF-8, else base64. */
export function undecodableRecord(message: {
  key?: Buffer | undefined;
  value?: Buffer | undefined;
}): Record<string, string | null> {
  const value = message.value ?? null;
  const out: Record<string, string | null> = {};
  if (message.key) out.key = message.key.toString('utf8');
  if (value === null) out.value = null;
  else if (isUtf8(value)) out.value = value.toString('utf8');
  else out.valueBase64 = value.toString('base64');
  return out;
}

/** The error a message whose value is not valid JSON is dead-lettered with. */
export function undecodableError(m: KafkaMessage, offset: number, err: unknown): SluiceError {
  return new SluiceError(
    ErrorCode.PARSE,
    `invalid JSON in topic \`${m.topic}\` partition ${m.partition} offset ${offset}: ${(err as Error).message}; the message went to the dlq with its bytes`,
    { topic: m.topic, partition: m.partition, offset },
  );
}
