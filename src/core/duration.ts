/**
 * Durations as people write them in pipeline files: `500ms`, `10s`, `1m`, `2h`, `1d`.
 *
 * Config-time only (never on the hot path), so a regular expression is fine here.
 */
import { ErrorCode, SluiceError } from './errors.ts';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * The longest duration Sluice takes: 100 years (of 365.25 days) in milliseconds. Longer ones
 * are typos or attacks, and past it times stop being valid dates and safe integers.
 */
export const MAX_DURATION_MS = 100 * 365.25 * 86_400_000;

function tooLong(value: string | number): SluiceError {
  return new SluiceError(
    ErrorCode.CONFIG,
    `\`${value}\` is longer than 100 years, the longest duration Sluice takes; use a shorter one (e.g. \`36500d\`)`,
  );
}

/**
 * Parses a duration string into milliseconds. The contract: a non-negative decimal number
 * immediately followed by one unit (`ms`, `s`, `m`, `h`, `d`), surrounding spaces ignored;
 * anything else, and anything longer than 100 years (`MAX_DURATION_MS`), throws a
 * `SLUICE_CONFIG` error that says how to write it. A number is taken
 * as milliseconds already (so the TypeScript API may pass `250` where YAML says `250ms`).
 *
 * @example
 * parseDuration('500ms'); // 500
 * parseDuration('1.5s');  // 1500
 * parseDuration('1m');    // 60000
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > MAX_DURATION_MS) throw tooLong(value);
    if (Number.isFinite(value) && value >= 0) return value;
    throw new SluiceError(
      ErrorCode.CONFIG,
      `${value} is not a duration; use a number of milliseconds ≥ 0 or a string such as \`500ms\``,
    );
  }
  const m = DURATION.exec(value.trim());
  if (m === null) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${value}\` is not a duration; use a number with ms, s, m, h or d, e.g. \`500ms\``,
    );
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!(ms <= MAX_DURATION_MS)) throw tooLong(value.trim());
  return ms;
}
