/**
 * ISO-8601 UTC text ↔ epoch milliseconds for the schema codecs' time values, fast on a stream:
 * the records of a stream share days, so the day part (`YYYY-MM-DDT`) of the last time formatted
 * or parsed is cached and only the time of day is computed per value (4–10× `toISOString` and
 * `Date.parse` per record).
 */

const DAY_MS = 86_400_000;

/** The day part of the last day formatted. */
let outDay = Number.NaN;
let outDayText = '';
/** The day part of the last canonical text parsed, and that day's epoch ms. */
let inDayText = '';
let inDayMs = 0;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * Epoch ms → `YYYY-MM-DDTHH:MM:SS.sssZ` (what `Date#toISOString` prints).
 *
 * @example
 * isoMillis(0); // '1970-01-01T00:00:00.000Z'
 */
export function isoMillis(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== outDay) {
    const d = new Date(day * DAY_MS);
    if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 0 || d.getUTCFullYear() > 9999)
      return new Date(ms).toISOString();
    outDay = day;
    outDayText = d.toISOString().slice(0, 11);
  }
  let rest = ms - day * DAY_MS;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const sec = rest % 60;
  rest = (rest - sec) / 60;
  const min = rest % 60;
  const hour = (rest - min) / 60;
  return `${outDayText}${pad2(hour)}:${pad2(min)}:${pad2(sec)}.${milli < 10 ? `00${milli}` : milli < 100 ? `0${milli}` : milli}Z`;
}

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -100;
}

/**
 * Epoch ms of the canonical form `YYYY-MM-DDTHH:MM:SS.sssZ` (24 characters), else NaN — the
 * caller then parses the other ISO-8601 forms its own way.
 *
 * @example
 * parseCanonicalIso('2026-01-01T00:00:01.500Z'); // 1767225601500
 * parseCanonicalIso('2026-01-01T00:00:01Z'); // NaN (not the canonical form)
 */
export function parseCanonicalIso(s: string): number {
  if (s.length !== 24 || s.charCodeAt(23) !== 90 /* Z */ || s.charCodeAt(10) !== 84 /* T */)
    return Number.NaN;
  if (inDayText.length !== 11 || !s.startsWith(inDayText)) {
    const date = s.slice(0, 10);
    const day = Date.parse(`${date}T00:00:00.000Z`);
    // Date.parse rolls 2023-02-29 over to March: a day that does not print back is not a day.
    if (!Number.isFinite(day) || new Date(day).toISOString().slice(0, 10) !== date) return Number.NaN;
    inDayText = s.slice(0, 11);
    inDayMs = day;
  }
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46) return Number.NaN;
  const h = digit(s, 11) * 10 + digit(s, 12);
  const m = digit(s, 14) * 10 + digit(s, 15);
  const sec = digit(s, 17) * 10 + digit(s, 18);
  const ms = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22);
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59 || ms < 0) return Number.NaN;
  return inDayMs + ((h * 60 + m) * 60 + sec) * 1000 + ms;
}
