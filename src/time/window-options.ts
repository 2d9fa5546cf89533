/**
 * The window operator's options and their one validation. {@link windowPlan} turns
 * {@link WindowOptions} into a {@link WindowPlan} (durations in ms, aggregates compiled, the
 * assigner, the timestamp extractor, the watermark generator) or throws one `SLUICE_CONFIG` error
 * listing every problem; {@link windowProblems} returns the same problems with the path of the
 * option each is about, so the YAML `window` step (`spec.ts`) reports them at their line.
 */
import { availableParallelism } from 'node:os';
import type { Aggregate } from '../aggregate/aggregate.ts';
import { compileAggregate } from '../aggregate/parse.ts';
import { parseDuration } from '../core/duration.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { sessionWindows, slidingWindows, tumblingWindows, type WindowAssigner } from './assigners.ts';
import { fieldGetter, fieldTimestamp, type TimeFormat, type TimestampExtractor } from './timestamp.ts';
import { WatermarkGenerator } from './watermark.ts';

/** A duration: milliseconds, or a string such as `5m`. */
export type DurationInput = number | string;

/** Output fields every result has; aggregate and key names must differ from them. */
export const RESULT_FIELDS = [
  'windowStart',
  'windowEnd',
  'revision',
  'update',
  'retracted',
  'partial',
] as const;

/** A key function's result: one value (output as field `key`) or an object of key fields. */
export type KeyValue = string | number | bigint | boolean | Readonly<Record<string, unknown>>;

/** Options of `windowOperator` (and of `Stream.window`); the YAML `window` step is the same object. */
export interface WindowOptions<T = unknown> {
  /** Key fields (one name or several), or a function of the record. Omit for one global window. */
  key?: string | readonly string[] | ((record: T) => KeyValue);
  /** Event-time field (`ts`, `order.createdAt`) or a function returning epoch ms. */
  time?: string | ((record: T, meta: RecordMeta | undefined) => number);
  /** How the time field is written; default `auto` (ISO-8601 strings, numbers as epoch ms). */
  timeFormat?: TimeFormat;
  /** Windows in processing time (the run's clock) instead of event time; tumbling only. */
  processingTime?: boolean;
  /** Tumbling windows of this length. */
  tumbling?: DurationInput;
  /** Sliding windows: length and step. */
  sliding?: { size: DurationInput; slide: DurationInput };
  /** Session windows closing after `gap` without events. */
  session?: { gap: DurationInput };
  /** Shift of the tumbling/sliding grid from the epoch. */
  offset?: DurationInput;
  /**
   * This step's own watermark strategy: bounded out-of-orderness (0 = monotonous timestamps)
   * and an idle timeout per source partition. Without it, only upstream watermarks (and the end
   * of the input) fire windows.
   */
  watermark?: { maxOutOfOrder?: DurationInput; idleTimeout?: DurationInput };
  /** How long after a window fired it still takes late events (and emits updates). Default 0. */
  allowedLateness?: DurationInput;
  /** Output field → aggregate: a call expression (`sum(amount)`) or an {@link Aggregate}. */
  aggregate: Readonly<Record<string, string | Aggregate>>;
  /** Side output port for events later than the allowed lateness. */
  late?: string;
  /** Extra firings: `early` every so often in processing time, and every `count` events. */
  trigger?: { early?: DurationInput; count?: number };
  /**
   * The most live windows (one per key and window) this step may hold; past it the run fails
   * with a `SLUICE_STATE_LIMIT` error instead of running out of memory. Default: no count limit,
   * only the run's `maxStateBytes` (half of the heap) over every step's estimated state.
   */
  maxKeys?: number;
  /**
   * Threads to run this step on when its input is a plain file it reads alone (`auto`: one per
   * core). The file is split into byte ranges at row boundaries as the threads become free (this
   * thread starts at once; each worker, when started, takes half of what is left, and is not
   * started for a file too small for it to help); each thread decodes its ranges and
   * pre-aggregates windows, and this thread merges the partial windows and emits exactly the
   * results of a one-thread run, or runs on one thread when the input does not allow it (see
   * `splitParallel`). Default 1.
   */
  parallelism?: number | 'auto';
}

/** A window operator's options, checked and parsed: what the operator and its algorithms read. */
export interface WindowPlan {
  readonly assigner: WindowAssigner;
  readonly processingTime: boolean;
  /** Allowed lateness, ms. */
  readonly lateness: number;
  /** Aggregate (output field) names, in the order of `aggs` and `getters`. */
  readonly names: readonly string[];
  readonly aggs: readonly Aggregate[];
  /** Each aggregate's input of a record (`1` for one without a field). */
  readonly getters: readonly ((r: unknown) => unknown)[];
  /** Key fields, or undefined for a key function (`keyFn`) or one global window. */
  readonly keyFields: readonly string[] | undefined;
  readonly keyFn: ((r: unknown) => KeyValue) | undefined;
  /** Event time of a record; undefined in processing time. */
  readonly extract: TimestampExtractor | undefined;
  readonly timeField: string | undefined;
  readonly timeFormat: TimeFormat;
  /** This step's own watermark generator (stateful: one per operator). */
  readonly generator: WatermarkGenerator | undefined;
  readonly late: string | undefined;
  /** Early-firing period, ms. */
  readonly early: number | undefined;
  readonly countTrigger: number | undefined;
  readonly maxKeys: number | undefined;
  /** Threads asked for (`auto` resolved to the cores available); 1 without the option. */
  readonly parallelism: number;
}

/** One problem of a {@link WindowOptions}: what is wrong and what to do, and the option it is about. */
export interface WindowProblem {
  /** Path of the option inside the options object (`['sliding']`, `['aggregate', 'p99']`); `[]` for the whole. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Every problem of `options` (empty when it is valid). Pure apart from compiling aggregates; the
 * YAML spec calls it with its parsed config (durations already in ms).
 */
export function windowProblems<T>(options: WindowOptions<T>): WindowProblem[] {
  return parse(options).problems;
}

/**
 * The plan of `options`; throws one `SLUICE_CONFIG` error (component `window`) whose message
 * lists every problem, separated by `; `.
 */
export function windowPlan<T>(options: WindowOptions<T>): WindowPlan {
  const { plan, problems } = parse(options);
  if (plan === undefined || problems.length > 0)
    throw new SluiceError(ErrorCode.CONFIG, problems.map((p) => p.message).join('; '), {
      component: 'window',
    });
  return plan;
}

/** The side ports a window with `options` emits on: `[late]` when set. */
export function windowPorts(options: { late?: string | undefined }): readonly string[] {
  return options.late === undefined ? [] : [options.late];
}

const KINDS = ['tumbling', 'sliding', 'session'] as const;

function parse<T>(o: WindowOptions<T>): { plan?: WindowPlan; problems: WindowProblem[] } {
  const problems: WindowProblem[] = [];
  const problem = (path: readonly (string | number)[], message: string) => problems.push({ path, message });
  /** `v` in ms (`fallback` when absent), or undefined after reporting why it is not a duration. */
  const duration = (path: readonly string[], v: DurationInput | undefined, fallback: number) => {
    try {
      return v === undefined ? fallback : parseDuration(v);
    } catch (err) {
      problem(path, errorMessage(err));
      return undefined;
    }
  };

  const chosen = KINDS.filter((k) => o[k] !== undefined);
  if (chosen.length === 0)
    problem([], 'a window needs one of `tumbling`, `sliding` or `session`, e.g. `tumbling: 1m`');
  else if (chosen.length > 1)
    problem(
      [chosen[1] as string],
      `a window is tumbling, sliding or session: give only one of ${chosen.map((c) => `\`${c}\``).join(', ')}`,
    );
  const offset = duration(['offset'], o.offset, 0);
  const assigner =
    chosen.length === 1 && offset !== undefined
      ? makeAssigner(o, chosen[0] as (typeof KINDS)[number], offset, problem)
      : undefined;

  const processingTime = o.processingTime === true;
  if (processingTime) {
    if (o.tumbling === undefined && chosen.length === 1)
      problem([chosen[0] as string], 'processing-time windows are tumbling only');
    if (o.time !== undefined)
      problem(['time'], 'give `time` (event time) or `processingTime: true`, not both');
    if (o.watermark !== undefined)
      problem(['watermark'], '`watermark` applies to event time; remove it with `processingTime`');
    if (o.allowedLateness !== undefined)
      problem(
        ['allowedLateness'],
        '`allowedLateness` applies to event time; remove it with `processingTime`',
      );
  } else if (o.time === undefined) {
    problem([], 'a window needs `time` (the event-time field, e.g. `time: ts`) or `processingTime: true`');
  }

  const names = Object.keys(o.aggregate ?? {});
  if (names.length === 0)
    problem(['aggregate'], 'a window needs at least one aggregate, e.g. `aggregate: { count: count() }`');
  const aggs: Aggregate[] = [];
  for (const name of names) {
    const a = (o.aggregate as Record<string, string | Aggregate>)[name] as string | Aggregate;
    try {
      aggs.push(typeof a === 'string' ? compileAggregate(a) : a);
    } catch (err) {
      problem(['aggregate', name], `aggregate \`${name}\`: ${errorMessage(err)}`);
    }
  }

  const keyFields =
    typeof o.key === 'string' ? [o.key] : Array.isArray(o.key) ? [...(o.key as string[])] : undefined;
  for (const k of keyFields ?? []) if (k === '') problem(['key'], 'a key field name is empty');
  for (const reserved of RESULT_FIELDS) {
    if (names.includes(reserved))
      problem(
        ['aggregate', reserved],
        `aggregate name \`${reserved}\` is taken by the window result; rename it`,
      );
    if (keyFields?.includes(reserved))
      problem(['key'], `key field \`${reserved}\` is taken by the window result; rename it first`);
  }
  for (const k of keyFields ?? [])
    if (names.includes(k)) problem(['aggregate', k], `\`${k}\` is both a key field and an aggregate name`);

  const count = o.trigger?.count;
  if (count !== undefined && !(Number.isInteger(count) && count >= 1))
    problem(['trigger', 'count'], `trigger \`count\` must be a whole number ≥ 1, got ${count}`);
  if (o.maxKeys !== undefined && !(Number.isInteger(o.maxKeys) && o.maxKeys >= 1))
    problem(['maxKeys'], `\`maxKeys\` must be a whole number ≥ 1, got ${o.maxKeys}`);
  const par = o.parallelism;
  if (par !== undefined && par !== 'auto' && !(Number.isInteger(par) && par >= 1 && par <= 256))
    problem(
      ['parallelism'],
      `\`parallelism\` must be \`auto\` or a whole number from 1 to 256, got ${String(par)}`,
    );
  const lateness = duration(['allowedLateness'], o.allowedLateness, 0);
  const early =
    o.trigger?.early === undefined ? undefined : duration(['trigger', 'early'], o.trigger.early, 0);
  if (early !== undefined && !(early > 0))
    problem(['trigger', 'early'], 'trigger `early` must be longer than 0');
  let generator: WatermarkGenerator | undefined;
  if (o.watermark !== undefined && !processingTime) {
    const maxOutOfOrder = duration(['watermark', 'maxOutOfOrder'], o.watermark.maxOutOfOrder, 0);
    const idleTimeout = duration(['watermark', 'idleTimeout'], o.watermark.idleTimeout, 0);
    try {
      if (maxOutOfOrder !== undefined && idleTimeout !== undefined)
        generator = new WatermarkGenerator({
          maxOutOfOrder,
          ...(o.watermark.idleTimeout === undefined ? {} : { idleTimeout }),
        });
    } catch (err) {
      problem(['watermark'], errorMessage(err));
    }
  }
  if (o.late !== undefined && (o.late === '' || o.late === 'out' || o.late === 'dlq'))
    problem(['late'], `\`late\` names a side output; \`${o.late}\` cannot be one`);

  if (problems.length > 0 || assigner === undefined || lateness === undefined) return { problems };
  const timeFormat = o.timeFormat ?? 'auto';
  const timeField = typeof o.time === 'string' ? o.time : undefined;
  const plan: WindowPlan = {
    assigner,
    processingTime,
    lateness,
    names,
    aggs,
    getters: aggs.map((a) => (a.field === undefined ? () => 1 : fieldGetter(a.field))),
    keyFields,
    keyFn: typeof o.key === 'function' ? (o.key as (r: unknown) => KeyValue) : undefined,
    extract:
      typeof o.time === 'function'
        ? (o.time as TimestampExtractor)
        : timeField !== undefined
          ? fieldTimestamp(timeField, timeFormat)
          : undefined,
    timeField,
    timeFormat,
    generator,
    late: o.late,
    early,
    countTrigger: count,
    maxKeys: o.maxKeys,
    parallelism: par === 'auto' ? availableParallelism() : (par ?? 1),
  };
  return { plan, problems };
}

/** The assigner of the one window kind `kind` that `o` gives, or undefined after reporting why not. */
function makeAssigner<T>(
  o: WindowOptions<T>,
  kind: (typeof KINDS)[number],
  offset: number,
  problem: (path: readonly (string | number)[], message: string) => void,
): WindowAssigner | undefined {
  try {
    const ms = (v: DurationInput | undefined) => (v === undefined ? 0 : parseDuration(v));
    if (kind === 'tumbling') return tumblingWindows(ms(o.tumbling), offset);
    if (kind === 'sliding') return slidingWindows(ms(o.sliding?.size), ms(o.sliding?.slide), offset);
    return sessionWindows(ms(o.session?.gap));
  } catch (err) {
    problem([kind], errorMessage(err));
    return undefined;
  }
}
