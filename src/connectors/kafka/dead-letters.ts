/**
 * How a `kafka` sink that is the pipeline's `dlq:` output writes a dead letter: as the original
 * message, the way Kafka Connect's dead-letter queue does, so a consumer of the DLQ topic can
 * inspect or replay it with the tools it uses for the source topic.
 *
 * - value: the original bytes when the record failed to decode (the kafka source's dead letter
 *   holds them as `{ key?, value }` text or `{ key?, valueBase64 }`), else the failed record as
 *   JSON;
 * - key and headers: the original message's (the runtime sends each dead letter with its
 *   record's meta), plus `sluice.error.code`, `sluice.error.message`, `sluice.stage`,
 *   `sluice.source`, `sluice.position` (JSON) and `sluice.time` headers.
 */
import type { DeadLetter } from '../../core/stage.ts';

/** What {@link deadLetterMessage} makes of a dead letter: the value and the headers to add. */
export interface DeadLetterMessage {
  readonly value: Buffer;
  readonly headers: ReadonlyMap<string, string>;
}

/** True when `record` has the shape of a {@link DeadLetter} (what a `dlq:` output receives). */
export function isDeadLetter(record: unknown): record is DeadLetter {
  const r = record as Partial<DeadLetter> | null;
  return (
    r !== null &&
    typeof r === 'object' &&
    typeof r.stage === 'string' &&
    typeof r.time === 'string' &&
    typeof r.error === 'object' &&
    r.error !== null &&
    typeof r.error.code === 'string' &&
    'record' in r
  );
}

/** The original bytes of a record that failed to decode, if `letter` is such a dead letter. */
function originalBytes(letter: DeadLetter): Buffer | undefined {
  if (letter.error.code !== 'SLUICE_PARSE') return undefined;
  const r = letter.record as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object') return typeof r === 'string' ? Buffer.from(r, 'utf8') : undefined;
  // The kafka source's shape (`undecodableRecord`): `value` text or `valueBase64`, maybe `key`.
  for (const k of Object.keys(r)) if (k !== 'key' && k !== 'value' && k !== 'valueBase64') return undefined;
  if (r.key !== undefined && typeof r.key !== 'string') return undefined;
  if (typeof r.value === 'string') return Buffer.from(r.value, 'utf8');
  if (typeof r.valueBase64 === 'string') return Buffer.from(r.valueBase64, 'base64');
  return undefined;
}

/**
 * The message value and the `sluice.*` headers for `letter`; `json` serialises a failed record
 * (the sink's own JSON writer, so bigints and the like come out as elsewhere).
 *
 * @example
 * deadLetterMessage(letter, JSON.stringify).headers.get('sluice.error.code'); // 'SLUICE_PARSE'
 */
export function deadLetterMessage(letter: DeadLetter, json: (value: unknown) => string): DeadLetterMessage {
  const record = letter.record;
  const value =
    originalBytes(letter) ??
    (record instanceof Uint8Array
      ? Buffer.from(record.buffer, record.byteOffset, record.byteLength)
      : Buffer.from(json(record), 'utf8'));
  const headers = new Map<string, string>([
    ['sluice.error.code', letter.error.code],
    ['sluice.error.message', letter.error.message],
    ['sluice.stage', letter.stage],
    ['sluice.time', letter.time],
  ]);
  if (letter.source !== undefined) headers.set('sluice.source', letter.source);
  if (letter.position !== undefined) headers.set('sluice.position', json(letter.position));
  return { value, headers };
}
