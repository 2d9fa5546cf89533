/**
 * The options of the joins and their one validation: {@link joinPlan} turns {@link JoinOptions}
 * into a {@link JoinPlan} (durations in ms, key readers, time extractors, the match bounds) or
 * throws one `SLUICE_CONFIG` error listing every problem; {@link joinProblems} returns the same
 * problems with the option each is about, so the YAML `join` step reports them at their line.
 */
import { parseDuration } from '../core/duration.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { fieldGetter, fieldTimestamp, type TimeFormat, type TimestampExtractor } from '../time/timestamp.ts';

/** A duration: milliseconds, or a string such as `5m` (a leading `-` for a negative bound). */
export type JoinDuration = number | string;

/** The two sides of a join, one value each. */
export interface BySide<V> {
  readonly left: V;
  readonly right: V;
}

/** The spelling of a key "field" that reads the record's message key (`meta.key`, e.g. a Kafka key). */
export const MESSAGE_KEY = '$key';

/** Options of the stream–stream and stream–table joins (and of `Stream.join`); the YAML `join` step is the same object. */
export interface JoinOptions {
  /**
   * The join key: one field (or several) with the same name on both sides, or `{ left, right }`
   * naming each side's. `$key` reads the record's message key (`meta.key`). Values compare as text,
   * so `7` and `"7"` match; a record without its key goes to the dead-letter output.
   */
  key: string | readonly string[] | BySide<string | readonly string[]>;
  /**
   * The event-time field, the same on both sides, or `{ left, right }`. A table side without a
   * time field uses the record's `meta.timestamp` (the Kafka message timestamp), else it is valid
   * from the beginning of time.
   */
  time?: string | { left: string; right?: string | undefined };
  /** How the time fields are written; default `auto` (ISO-8601 strings, numbers as epoch ms). */
  timeFormat?: TimeFormat;
  /**
   * Interval join: a left and a right record match when `right.time − left.time` lies in
   * `[lower, upper]` (both inclusive), e.g. `['-5m', '1m']`.
   */
  between?: readonly [JoinDuration, JoinDuration];
  /** Window join: a left and a right record match when they fall in the same tumbling window of this length. */
  tumbling?: JoinDuration;
  /**
   * `inner` (default): only matches. `left`: every left record also when it found no match,
   * with `null` for the right side — emitted once, when the watermark shows no match can come.
   */
  type?: 'inner' | 'left';
  /**
   * Bounded out-of-orderness of each side's event times, and the idle timeout after which a side
   * that sent nothing stops holding the watermark back (it may then send late records).
   */
  watermark?: { maxOutOfOrder?: JoinDuration; idleTimeout?: JoinDuration };
  /** Side output for records that came after the watermark passed them; without it they are dead-lettered. A table's late changes are applied instead. */
  late?: string;
  /** Field names of the two sides in a result record; default `left` and `right` (the input names in YAML). */
  as?: Partial<BySide<string>>;
}

/** How a join matches, in ms: an interval relative to each record, or tumbling windows. */
export type JoinMatch =
  | { readonly kind: 'interval'; readonly lower: number; readonly upper: number }
  | { readonly kind: 'tumbling'; readonly size: number };

/** {@link JoinOptions} checked and parsed: what the join operators read. */
export interface JoinPlan {
  /** The key of a record as text (several fields: joined by a NUL); undefined when absent. */
  readonly key: BySide<(record: unknown, meta: RecordMeta | undefined) => string | undefined>;
  /** The key fields as written, for messages. */
  readonly keyText: BySide<string>;
  /** Each side's event time (NaN when unreadable), and its field (undefined: `meta.timestamp`). */
  readonly time: BySide<TimestampExtractor>;
  readonly timeField: BySide<string | undefined>;
  readonly timeFormat: TimeFormat;
  /** Undefined for a stream–table join. */
  readonly match: JoinMatch | undefined;
  readonly outer: boolean;
  readonly maxOutOfOrder: number;
  readonly idleTimeout: number | undefined;
  readonly late: string | undefined;
  readonly as: BySide<string>;
}

/** One problem of a {@link JoinOptions}: what is wrong and what to do, and the option it is about. */
export interface JoinProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Which join the options are for: two streams, or a stream and a table. */
export type JoinKind = 'stream' | 'table';

/** Every problem of `options` (empty when valid). */
export function joinProblems(options: JoinOptions, kind: JoinKind): JoinProblem[] {
  return parse(options, kind).problems;
}

/** The plan of `options`; throws one `SLUICE_CONFIG` error (component `join`) listing every problem. */
export function joinPlan(options: JoinOptions, kind: JoinKind): JoinPlan {
  const { plan, problems } = parse(options, kind);
  if (plan === undefined || problems.length > 0)
    throw new SluiceError(ErrorCode.CONFIG, problems.map((p) => p.message).join('; '), { component: 'join' });
  return plan;
}

/** The side ports a join with `options` emits on: `[late]` when set. */
export function joinPorts(options: { late?: string | undefined }): readonly string[] {
  return options.late === undefined ? [] : [options.late];
}

function parse(o: JoinOptions, kind: JoinKind): { plan?: JoinPlan; problems: JoinProblem[] } {
  const problems: JoinProblem[] = [];
  const problem = (path: readonly (string | number)[], message: string) => problems.push({ path, message });
  const duration = (path: readonly (string | number)[], v: JoinDuration | undefined): number | undefined => {
    if (v === undefined) return undefined;
    try {
      if (typeof v === 'string' && v.startsWith('-')) return -parseDuration(v.slice(1));
      if (typeof v === 'number' && v < 0) return -parseDuration(-v);
      return parseDuration(v);
    } catch (err) {
      problem(path, errorMessage(err));
      return undefined;
    }
  };

  let match: JoinMatch | undefined;
  if (kind === 'table') {
    if (o.between !== undefined)
      problem(['between'], 'a table join uses the table row valid at the event’s time; remove `between`');
    if (o.tumbling !== undefined)
      problem(['tumbling'], 'a table join uses the table row valid at the event’s time; remove `tumbling`');
  } else if (o.between !== undefined && o.tumbling !== undefined) {
    problem(['tumbling'], 'a join is an interval join (`between`) or a window join (`tumbling`): give one');
  } else if (o.between !== undefined) {
    if (!Array.isArray(o.between) || o.between.length !== 2)
      problem(
        ['between'],
        '`between` is two bounds `[lower, upper]` of `right.time − left.time`, e.g. `[-5m, 1m]`',
      );
    else {
      const lower = duration(['between', 0], o.between[0]);
      const upper = duration(['between', 1], o.between[1]);
      if (lower !== undefined && upper !== undefined) {
        if (lower > upper)
          problem(
            ['between'],
            `\`between\` lower bound (${o.between[0]}) is after its upper bound (${o.between[1]}); write \`[lower, upper]\``,
          );
        else match = { kind: 'interval', lower, upper };
      }
    }
  } else if (o.tumbling !== undefined) {
    const size = duration(['tumbling'], o.tumbling);
    if (size !== undefined && !(size > 0)) problem(['tumbling'], '`tumbling` must be longer than 0');
    else if (size !== undefined) match = { kind: 'tumbling', size };
  } else {
    problem(
      [],
      'a stream join needs `between: [lower, upper]` (interval join, e.g. `[-5m, 1m]`) or `tumbling: 1m` (window join)',
    );
  }

  const keys = sides(o.key);
  const keyText = { left: '', right: '' };
  const keyFns: Partial<Record<'left' | 'right', JoinPlan['key']['left']>> = {};
  if (keys === undefined)
    problem(['key'], 'a join needs `key`: a field (or several) on both sides, or `{ left, right }`');
  else
    for (const side of ['left', 'right'] as const) {
      const fields = typeof keys[side] === 'string' ? [keys[side] as string] : [...(keys[side] as string[])];
      if (fields.length === 0 || fields.some((f) => typeof f !== 'string' || f === ''))
        problem(['key', side], `the ${side} key field name is empty`);
      keyText[side] = fields.join(', ');
      keyFns[side] = keyReader(fields);
    }
  const count = (k: string | readonly string[]) => (typeof k === 'string' ? 1 : k.length);
  if (keys !== undefined && count(keys.left) !== count(keys.right))
    problem(
      ['key'],
      `the two sides have different numbers of key fields (${keyText.left} and ${keyText.right})`,
    );

  const times =
    o.time === undefined ? undefined : typeof o.time === 'string' ? { left: o.time, right: o.time } : o.time;
  if (times === undefined || typeof times.left !== 'string' || times.left === '')
    problem(['time'], 'a join needs `time`: the event-time field of both sides, or `{ left, right }`');
  if (kind === 'stream' && times !== undefined && (times.right === undefined || times.right === ''))
    problem(
      ['time', 'right'],
      'a stream join needs the right side’s event-time field too: `time: { left: ts, right: ts }`',
    );
  const timeFormat = o.timeFormat ?? 'auto';

  const maxOutOfOrder = duration(['watermark', 'maxOutOfOrder'], o.watermark?.maxOutOfOrder) ?? 0;
  if (maxOutOfOrder < 0) problem(['watermark', 'maxOutOfOrder'], '`maxOutOfOrder` cannot be negative');
  const idleTimeout = duration(['watermark', 'idleTimeout'], o.watermark?.idleTimeout);
  if (idleTimeout !== undefined && !(idleTimeout > 0))
    problem(['watermark', 'idleTimeout'], '`idleTimeout` must be longer than 0');
  if (o.type !== undefined && o.type !== 'inner' && o.type !== 'left')
    problem(['type'], `\`type\` is \`inner\` or \`left\`, not \`${String(o.type)}\``);
  if (o.late !== undefined && (o.late === '' || o.late === 'out' || o.late === 'dlq'))
    problem(['late'], `\`late\` names a side output; \`${o.late}\` cannot be one`);
  const as = { left: o.as?.left ?? 'left', right: o.as?.right ?? 'right' };
  if (as.left === as.right || as.left === '' || as.right === '')
    problem(
      ['as'],
      `the two sides need two different non-empty field names in a result, got \`${as.left}\` and \`${as.right}\``,
    );

  if (problems.length > 0 || keyFns.left === undefined || keyFns.right === undefined || times === undefined)
    return { problems };
  const metaTime = (meta: RecordMeta | undefined) => meta?.timestamp ?? Number.NEGATIVE_INFINITY;
  const timeOf = (field: string | undefined): TimestampExtractor =>
    field === undefined || field === '' ? (_r, meta) => metaTime(meta) : fieldTimestamp(field, timeFormat);
  const tableTime = (field: string | undefined): TimestampExtractor => {
    const of = timeOf(field);
    // A deletion (tombstone) has no fields: it takes effect at its message timestamp.
    return (r, meta) => (r === null || r === undefined ? metaTime(meta) : of(r, meta));
  };
  return {
    problems,
    plan: {
      key: { left: keyFns.left, right: keyFns.right },
      keyText,
      time: {
        left: timeOf(times.left),
        right: kind === 'table' ? tableTime(times.right) : timeOf(times.right),
      },
      timeField: { left: times.left, right: times.right === '' ? undefined : times.right },
      timeFormat,
      match,
      outer: o.type === 'left',
      maxOutOfOrder,
      idleTimeout,
      late: o.late,
      as,
    },
  };
}

function sides(key: JoinOptions['key'] | undefined): BySide<string | readonly string[]> | undefined {
  if (key === undefined || key === null) return undefined;
  if (typeof key === 'string' || Array.isArray(key)) return { left: key as string, right: key as string };
  const k = key as BySide<string | readonly string[]>;
  if (k.left === undefined || k.right === undefined) return undefined;
  return k;
}

/** Reads a key as text: scalars by their text, several fields joined by NUL, `$key` the message key. */
function keyReader(
  fields: readonly string[],
): (record: unknown, meta: RecordMeta | undefined) => string | undefined {
  const getters = fields.map((f): ((r: unknown, m: RecordMeta | undefined) => unknown) => {
    if (f === MESSAGE_KEY)
      return (_r, m) =>
        typeof m?.key === 'string'
          ? m.key
          : m?.key === undefined
            ? undefined
            : Buffer.from(m.key).toString('utf8');
    const get = fieldGetter(f);
    return (r) => get(r);
  });
  const text = (v: unknown): string | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  };
  if (getters.length === 1) {
    const g = getters[0] as (r: unknown, m: RecordMeta | undefined) => unknown;
    return (r, m) => text(g(r, m));
  }
  return (r, m) => {
    let out = '';
    for (let i = 0; i < getters.length; i++) {
      const t = text((getters[i] as (r: unknown, m: RecordMeta | undefined) => unknown)(r, m));
      if (t === undefined) return undefined;
      out = i === 0 ? t : `${out}\u0000${t}`;
    }
    return out;
  };
}
