/**
 * The latest dead letters a run keeps for a dashboard (`RunHandle.deadLetterSample`): how many,
 * and each one as shown — secrets redacted, the record cut to a JSON preview.
 */
import { redactSecretsDeep } from './secrets.ts';
import type { DeadLetter } from './stage.ts';

/** How many of the latest dead letters `RunHandle.deadLetterSample` keeps. */
export const DEAD_LETTER_SAMPLE_SIZE = 20;

/** Longest preview of a sampled dead letter's record, characters. */
const SAMPLE_RECORD_CHARS = 1024;

/** A dead letter for a dashboard: secrets redacted, the record cut to a JSON preview. */
export function sampleLetter(letter: DeadLetter): DeadLetter {
  let preview: string;
  try {
    preview =
      typeof letter.record === 'string'
        ? letter.record
        : (JSON.stringify(letter.record) ?? String(letter.record));
  } catch {
    preview = String(letter.record);
  }
  if (preview.length > SAMPLE_RECORD_CHARS) preview = `${preview.slice(0, SAMPLE_RECORD_CHARS)}…`;
  return redactSecretsDeep({ ...letter, record: preview });
}
