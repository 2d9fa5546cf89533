/**
 * The frames of Pulsar's WebSocket API as the `pulsar` connector reads and writes them, and the
 * codec between a message payload (base64 in the frame) and a record: `json` (one JSON document),
 * `text` (a UTF-8 string) or `raw` (a Buffer).
 */
import type { RecordMeta } from '../../core/message.ts';
import { parseJson } from '../../formats/json.ts';
import { stringifyJson } from '../../formats/jsonl.ts';

/** How a payload becomes a record and back. */
export type PulsarFormat = 'json' | 'text' | 'raw';

/** A message as the consumer socket delivers it. */
export interface Delivered {
  /** Base64 of the message id (what an ack or a nack names). */
  readonly messageId: string;
  /** Base64 of the payload. */
  readonly payload: string;
  readonly key?: string;
  readonly properties?: Readonly<Record<string, string>>;
  /** ISO-8601. */
  readonly publishTime?: string;
  /** ISO-8601, when the producer set one. */
  readonly eventTime?: string;
  readonly redeliveryCount?: number;
}

/** The answer to one send on a producer socket. */
export interface Receipt {
  readonly result: string;
  readonly messageId?: string;
  readonly context?: string;
  readonly errorMsg?: string;
}

/** Parses a consumer frame; undefined for frames that are not messages (e.g. an end-of-topic answer). */
export function parseDelivered(text: string): Delivered | undefined {
  const v = JSON.parse(text) as Partial<Delivered>;
  if (typeof v.messageId !== 'string' || typeof v.payload !== 'string') return undefined;
  return v as Delivered;
}

/**
 * The record of a payload; `json` through `parse` (`parseJson`, or the lossless parser of a
 * `decimals` option). Throws on invalid JSON and JSON nesting deeper than 512 levels.
 */
export function decodePayload(
  payloadB64: string,
  format: PulsarFormat,
  parse: (text: string) => unknown = parseJson,
): unknown {
  const bytes = Buffer.from(payloadB64, 'base64');
  if (format === 'raw') return bytes;
  const text = bytes.toString('utf8');
  return format === 'text' ? text : parse(text);
}

/** The base64 payload of `record`. Throws when it cannot be written in `format`. */
export function encodePayload(record: unknown, format: PulsarFormat): string {
  if (format === 'raw') {
    if (record instanceof Uint8Array)
      return Buffer.from(record.buffer, record.byteOffset, record.byteLength).toString('base64');
    if (typeof record === 'string') return Buffer.from(record, 'utf8').toString('base64');
    throw new Error(
      `format \`raw\` writes bytes or strings, not a ${record === null ? 'null' : typeof record}`,
    );
  }
  if (format === 'text') {
    if (typeof record === 'string') return Buffer.from(record, 'utf8').toString('base64');
    if (record instanceof Uint8Array) return Buffer.from(record).toString('base64');
    throw new Error(`format \`text\` writes strings, not a ${record === null ? 'null' : typeof record}`);
  }
  const text = stringifyJson(record);
  if (text === undefined) throw new Error(`a ${typeof record} cannot be written as JSON`);
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Epoch ms of an ISO-8601 time from the broker, or undefined. */
function time(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * The record meta of a delivered message: `position` = `{ topic, messageId, redeliveryCount }`,
 * `key`, `headers` (the properties), `timestamp` (the event time when the producer set one,
 * else the publish time) and `attributes.publishTime`.
 */
export function metaOf(source: string, topic: string, m: Delivered): RecordMeta {
  const publish = time(m.publishTime);
  const event = time(m.eventTime);
  const position: Record<string, string | number> = { topic, messageId: m.messageId };
  if (m.redeliveryCount !== undefined && m.redeliveryCount > 0) position.redeliveryCount = m.redeliveryCount;
  const meta: {
    source: string;
    position: Record<string, string | number>;
    key?: string;
    timestamp?: number;
    headers?: Record<string, string>;
    attributes?: Record<string, number>;
  } = { source, position };
  if (m.key !== undefined) meta.key = m.key;
  const ts = event ?? publish;
  if (ts !== undefined) meta.timestamp = ts;
  if (m.properties !== undefined && Object.keys(m.properties).length > 0) meta.headers = { ...m.properties };
  if (publish !== undefined) meta.attributes = { publishTime: publish };
  return meta;
}
