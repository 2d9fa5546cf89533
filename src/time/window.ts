/**
 * The window operator: keyed tumbling, sliding and session windows in event time (or
 * tumbling windows in processing time), with watermark-driven firing, early and count
 * triggers, allowed lateness with *update* results, a `late` side output, and purging once
 * the watermark passes a window's end plus the allowed lateness.
 *
 * Result records hold the key fields by name, `windowStart` and `windowEnd` (ISO-8601 UTC), the
 * aggregate fields by name, `revision` (1 for a window's first result, 2, 3 … for each later
 * one) and `update` (true when the result replaces one emitted before), so a sink can upsert
 * on key + `windowStart`. When a late event merges session windows that were already
 * emitted, the sessions that no longer exist under their `windowStart` get a retraction: the
 * key fields, `windowStart`, `windowEnd`, the next `revision`, `update: true` and
 * `retracted: true` — delete that row.
 *
 * Time model. The watermark is the larger of the step's own (generated from the event times
 * it sees, per source partition, merged by minimum, see {@link WatermarkGenerator}) and the
 * upstream in-band watermark. It advances once per batch: every record of a batch is judged
 * against the watermark as it stood before the batch. A window `[start, end)` fires when the
 * watermark reaches `end − 1`; it is kept `allowedLateness` longer, during which a late event
 * updates it and an update is emitted after the batch; once the watermark reaches
 * `end − 1 + allowedLateness` it is dropped. An event whose every window is dropped already
 * goes to the `late` output (or, without one, to the dead-letter output: never silently).
 */
import { type Aggregate, SKIP } from '../aggregate/aggregate.ts';
import { compileAggregate } from '../aggregate/parse.ts';
import { parseDuration } from '../core/duration.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { type Batch, batchOf, type RecordMeta, type Signal, watermark } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';
import { sessionWindows, slidingWindows, tumblingWindows, type WindowAssigner } from './assigners.ts';
import {
  describeBadTimestamp,
  fieldGetter,
  fieldTimestamp,
  type TimeFormat,
  type TimestampExtractor,
} from './timestamp.ts';
import { WatermarkGenerator } from './watermark.ts';

/** A duration: milliseconds, or a string such as `5m`. */
export type DurationInput = number | string;

/** Output fields every result has; aggregate and key names must differ from them. */
export const RESULT_FIELDS = ['windowStart', 'windowEnd', 'revision', 'update', 'retracted'] as const;

/** A key function's result: one value (output as field `key`) or an object of key fields. */
export type KeyValue = string | number | bigint | boolean | Readonly<Record<string, unknown>>;

/** Options of {@link windowOperator} (and of `Stream.window`); the YAML `window` step is the same object. */
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
}

/** A late event as sent to the `late` output. */
export interface LateEvent<T = unknown> {
  /** The event as it arrived. */
  readonly event: T;
  /** Its event time (ISO-8601 UTC). */
  readonly eventTime: string;
  /** The watermark it arrived behind (ISO-8601 UTC). */
  readonly watermark: string;
  /** How far behind the point where its windows were dropped, ms (watermark − window end + 1 − allowed lateness, of its newest window). */
  readonly latenessMs: number;
}

/** What every window holds: its key, accumulators and emission state. */
interface WinState {
  ck: string;
  keyRec: Readonly<Record<string, unknown>>;
  accs: unknown[];
  revision: number;
  /** Changed since its last result. */
  dirty: boolean;
  /** Queued in `pending` for an emission after the batch. */
  queued: boolean;
  /** Events since its last result (count trigger). */
  n: number;
}

/** A session window. */
interface Win extends WinState {
  start: number;
  end: number;
  /** The watermark passed its end (at least one on-time result was due). */
  closed: boolean;
  /** False once merged away or purged. */
  alive: boolean;
}

/**
 * A tumbling or sliding window: one key in one {@link Bucket} (closed once the bucket fired).
 * The live windows of a key form a list from newest to oldest start (`older`/`newer`), whose head
 * is in `WindowOperator.latest`: an event finds its window with one map lookup (in order, the
 * head is its window). One map per operator rather than per bucket: a key's new window updates
 * its entry, or reuses its purged last window in place (a husk, see `purge`), instead of
 * inserting into a fresh map every window length — with many keys and few events per key and
 * window, that churn (map growth, new objects promoted and then dropped) was most of the cost.
 */
interface AlignedWin extends WinState {
  /** Its bucket; {@link PURGED} for a husk. */
  b: Bucket;
  older: AlignedWin | undefined;
  newer: AlignedWin | undefined;
  /** For a husk: the purge (count) that made it one. */
  diedAt: number;
}

/** Tumbling/sliding windows that share a start: one per key, in creation order. */
interface Bucket {
  readonly start: number;
  readonly end: number;
  readonly startIso: string;
  readonly endIso: string;
  readonly wins: AlignedWin[];
  fired: boolean;
}

interface HeapEntry {
  readonly t: number;
  readonly w: Win;
  readonly end: number;
}

/** A min-heap by `t`, for session fire and purge times (entries are checked on pop). */
class TimeHeap {
  private readonly a: HeapEntry[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): HeapEntry | undefined {
    return this.a[0];
  }
  push(e: HeapEntry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as HeapEntry).t <= e.t) break;
      a[i] = a[p] as HeapEntry;
      i = p;
    }
    a[i] = e;
  }
  pop(): HeapEntry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && (a[r] as HeapEntry).t < (a[l] as HeapEntry).t ? r : l;
      if ((a[c] as HeapEntry).t >= last.t) break;
      a[i] = a[c] as HeapEntry;
      i = c;
    }
    a[i] = last;
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

const iso = (t: number) => new Date(t).toISOString();

/** The accumulators of a purged window. */
const NO_ACCS: unknown[] = [];

/** The bucket of a husk: a purged window kept for its key's next window (see `purge`). */
const PURGED: Bucket = {
  start: Number.NEGATIVE_INFINITY,
  end: Number.NEGATIVE_INFINITY,
  startIso: '',
  endIso: '',
  wins: [],
  fired: true,
};

/** Builds a result record: key fields, window bounds, aggregate values, revision, update flag. */
type ResultMaker = (
  key: Readonly<Record<string, unknown>>,
  windowStart: string,
  windowEnd: string,
  values: readonly unknown[],
  revision: number,
) => Record<string, unknown>;

/**
 * The result maker for key fields `keyFields` (undefined: keys from a key function, or none) and
 * aggregate names `names`. With key fields it is generated code (`new Function`), one object
 * literal: every result then has the same hidden class with in-object fields, built in one step
 * instead of by a spread and six added properties (one result per window, so this is a hot path
 * when windows hold few events). Names are embedded with `JSON.stringify`, so none can inject code.
 */
function resultMaker(keyFields: readonly string[] | undefined, names: readonly string[]): ResultMaker {
  if (keyFields === undefined) {
    return (key, windowStart, windowEnd, values, revision) => {
      const rec: Record<string, unknown> = { ...key, windowStart, windowEnd };
      for (let j = 0; j < names.length; j++) rec[names[j] as string] = values[j];
      rec.revision = revision;
      rec.update = revision > 1;
      return rec;
    };
  }
  const prop = (name: string, value: string) =>
    `${name === '__proto__' ? '["__proto__"]' : JSON.stringify(name)}: ${value}`;
  const props = [
    ...keyFields.map((f) => prop(f, `k[${JSON.stringify(f)}]`)),
    'windowStart: s',
    'windowEnd: e',
    ...names.map((n, j) => prop(n, `v[${j}]`)),
    'revision: r',
    'update: r > 1',
  ];
  return new Function('k', 's', 'e', 'v', 'r', `return { ${props.join(', ')} };`) as ResultMaker;
}

/** A bucket being fired: its results are made from window `next` on; `gone`: purge them too. */
interface Firing {
  readonly b: Bucket;
  readonly gone: boolean;
  next: number;
}

/** Results per emitted batch at most (pending updates may add up to one input batch's worth). */
const RESULT_BATCH = 4096;

/** Most keys `pairKey` caches before it starts over. */
const PAIR_KEYS = 65_536;

/** Records per chunk of `process` (see there): small enough that a chunk's state stays in cache. */
const CHUNK = 256;

const isAbsent = (v: unknown) => v === undefined || v === null;

/**
 * The key of `r` for key fields `kf`: a string value as it is, another value as `type:value`
 * (so `"1"` and `1` differ), several joined with U+0000; undefined when a field is missing.
 */
function fieldKey(r: Record<string, unknown>, kf: readonly string[]): string | undefined {
  const v = r[kf[0] as string];
  if (v === undefined || v === null) return undefined;
  let ck = typeof v === 'string' ? v : `${typeof v}:${String(v)}`;
  for (let k = 1; k < kf.length; k++) {
    const x = r[kf[k] as string];
    if (x === undefined || x === null) return undefined;
    ck = `${ck}\u0000${typeof x === 'string' ? x : `${typeof x}:${String(x)}`}`;
  }
  return ck;
}

function ms(v: DurationInput | undefined, fallback: number): number {
  return v === undefined ? fallback : parseDuration(v);
}

function configError(message: string): SluiceError {
  return new SluiceError(ErrorCode.CONFIG, message, { component: 'window' });
}

/** A window operator's parsed configuration. */
interface Plan {
  assigner: WindowAssigner;
  processingTime: boolean;
  lateness: number;
  names: string[];
  aggs: Aggregate[];
  getters: ((r: unknown) => unknown)[];
  keyFields: string[] | undefined;
  keyFn: ((r: unknown) => KeyValue) | undefined;
  extract: TimestampExtractor | undefined;
  timeField: string | undefined;
  timeFormat: TimeFormat;
  generator: WatermarkGenerator | undefined;
  late: string | undefined;
  early: number | undefined;
  countTrigger: number | undefined;
}

function plan<T>(o: WindowOptions<T>): Plan {
  const problems: string[] = [];
  const chosen = (['tumbling', 'sliding', 'session'] as const).filter((k) => o[k] !== undefined);
  if (chosen.length !== 1)
    throw configError(
      chosen.length === 0
        ? 'a window needs one of `tumbling`, `sliding` or `session`, e.g. `tumbling: 1m`'
        : `a window takes one of \`tumbling\`, \`sliding\` and \`session\`, got ${chosen.map((c) => `\`${c}\``).join(' and ')}`,
    );
  let assigner: WindowAssigner;
  const offset = ms(o.offset, 0);
  try {
    if (o.tumbling !== undefined) assigner = tumblingWindows(ms(o.tumbling, 0), offset);
    else if (o.sliding !== undefined)
      assigner = slidingWindows(ms(o.sliding.size, 0), ms(o.sliding.slide, 0), offset);
    else assigner = sessionWindows(ms(o.session?.gap, 0));
  } catch (err) {
    throw configError(errorMessage(err));
  }
  const processingTime = o.processingTime === true;
  if (processingTime) {
    if (assigner.kind !== 'tumbling') problems.push('processing-time windows are tumbling only');
    if (o.time !== undefined) problems.push('give `time` (event time) or `processingTime: true`, not both');
    if (o.watermark !== undefined)
      problems.push('`watermark` applies to event time; remove it with `processingTime`');
    if (o.allowedLateness !== undefined)
      problems.push('`allowedLateness` applies to event time; remove it with `processingTime`');
  } else if (o.time === undefined) {
    problems.push('a window needs `time` (the event-time field, e.g. `time: ts`) or `processingTime: true`');
  }
  const names = Object.keys(o.aggregate ?? {});
  if (names.length === 0) problems.push('a window needs at least one `aggregate`, e.g. `{ count: count() }`');
  const aggs: Aggregate[] = [];
  for (const name of names) {
    const a = (o.aggregate as Record<string, string | Aggregate>)[name] as string | Aggregate;
    try {
      aggs.push(typeof a === 'string' ? compileAggregate(a) : a);
    } catch (err) {
      problems.push(`aggregate \`${name}\`: ${errorMessage(err)}`);
    }
  }
  const keyFields =
    typeof o.key === 'string' ? [o.key] : Array.isArray(o.key) ? [...(o.key as string[])] : undefined;
  for (const k of keyFields ?? []) if (k === '') problems.push('a key field name is empty');
  for (const reserved of RESULT_FIELDS) {
    if (names.includes(reserved))
      problems.push(`aggregate name \`${reserved}\` is taken by the window result; rename it`);
    if (keyFields?.includes(reserved))
      problems.push(`key field \`${reserved}\` is taken by the window result; rename it first`);
  }
  for (const k of keyFields ?? [])
    if (names.includes(k)) problems.push(`\`${k}\` is both a key field and an aggregate name`);
  const count = o.trigger?.count;
  if (count !== undefined && !(Number.isInteger(count) && count >= 1))
    problems.push(`trigger \`count\` must be a whole number ≥ 1, got ${count}`);
  let lateness = 0;
  let early: number | undefined;
  let generator: WatermarkGenerator | undefined;
  try {
    lateness = ms(o.allowedLateness, 0);
    early = o.trigger?.early === undefined ? undefined : ms(o.trigger.early, 0);
    if (early !== undefined && !(early > 0)) problems.push('trigger `early` must be longer than 0');
    if (o.watermark !== undefined && !processingTime) {
      generator = new WatermarkGenerator({
        maxOutOfOrder: ms(o.watermark.maxOutOfOrder, 0),
        ...(o.watermark.idleTimeout === undefined ? {} : { idleTimeout: ms(o.watermark.idleTimeout, 0) }),
      });
    }
  } catch (err) {
    problems.push(errorMessage(err));
  }
  if (o.late !== undefined && (o.late === '' || o.late === 'out' || o.late === 'dlq'))
    problems.push(`\`late\` names a side output; \`${o.late}\` cannot be one`);
  if (problems.length > 0) throw configError(problems.join('; '));
  const timeFormat = o.timeFormat ?? 'auto';
  const timeField = typeof o.time === 'string' ? o.time : undefined;
  return {
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
  };
}

/** The side ports a window with `options` emits on: `[late]` when set. */
export function windowPorts(options: { late?: string | undefined }): readonly string[] {
  return options.late === undefined ? [] : [options.late];
}

/**
 * Builds a window operator; see the module comment for the time model and result shape.
 * Throws a `SLUICE_CONFIG` error listing every problem of `options`.
 *
 * @example
 * stream.via(windowOperator({
 *   key: ['country', 'event_type'], time: 'ts', tumbling: '1m',
 *   watermark: { maxOutOfOrder: '5m' }, allowedLateness: '1h',
 *   aggregate: { count: 'count()', amount: 'sum(amount)', p99: 'percentile(risk, 0.99)' },
 *   late: 'late',
 * }));
 */
export function windowOperator<T = unknown>(options: WindowOptions<T>): WindowOperator<T> {
  return new WindowOperator<T>(plan(options));
}

/** The window operator; build it with {@link windowOperator}. */
export class WindowOperator<T = unknown> implements Operator<T, Record<string, unknown>> {
  /** Side ports it may emit on (the `late` output when configured). */
  readonly ports: readonly string[];
  private readonly p: Plan;
  private ctx!: StageContext;
  /** The effective watermark (−Infinity until known). */
  private wm = Number.NEGATIVE_INFINITY;
  private upstream = Number.NEGATIVE_INFINITY;
  private forwarded = Number.NEGATIVE_INFINITY;
  // Tumbling/sliding state: buckets by window start, their starts in ascending order, and each
  // key's newest live window (the head of its list, see AlignedWin).
  private readonly buckets = new Map<number, Bucket>();
  private starts: number[] = [];
  private lastBucket: Bucket | undefined;
  private readonly latest = new Map<string, AlignedWin>();
  /** Husks (see `purge`) made by the last purge of buckets, and by the one before. */
  private husks: AlignedWin[] = [];
  private oldHusks: AlignedWin[] = [];
  /** Purges of buckets so far (numbers the husks' generations). */
  private purges = 0;
  /** Every aggregate's accumulator is a number (count, sum…): a husk keeps its array. */
  private readonly numericAccs: boolean;
  /** Builds a result record; `values` holds the aggregate results while it runs. */
  private readonly makeResult: ResultMaker;
  private readonly values: unknown[];
  /** Keys of the records of the current chunk (see `process`). */
  private readonly cks: (string | undefined)[] = new Array(CHUNK);
  /** Keys of two key fields by their values (see `pairKey`), and how many it holds. */
  private readonly pairKeys = new Map<string, Map<string, string>>();
  private pairCount = 0;
  /** Tumbling/sliding: the newest window of each of those keys, as `lookAhead` found it. */
  private readonly heads: (AlignedWin | undefined)[] = new Array(CHUNK);
  /** Tumbling/sliding: window length and the step between window starts (0 for sessions). */
  private readonly size: number;
  private readonly step: number;
  private readonly offset: number;
  // Session state: each key's live sessions, and fire/purge times.
  private readonly sessions = new Map<string, Win[]>();
  private readonly fireHeap = new TimeHeap();
  private readonly purgeHeap = new TimeHeap();
  // Emissions collected during one call, sent at its end.
  private out: Record<string, unknown>[] = [];
  private pending: (Win | AlignedWin)[] = [];
  /** Buckets whose results are still to be made (see `advance`), in order. */
  private firing: Firing[] = [];
  private lateRecs: LateEvent<T>[] = [];
  private lateMeta: (RecordMeta | undefined)[] = [];
  private readonly scratch: unknown[];
  private nextEarly: number | undefined;
  // Counters for `metrics()`.
  private openWindows = 0;
  private lateCount = 0;
  private results = 0;

  constructor(p: Plan) {
    this.p = p;
    this.ports = windowPorts(p);
    this.scratch = new Array(p.aggs.length);
    const a = p.assigner;
    this.size = a.kind === 'session' ? 0 : a.size;
    this.step = a.kind === 'sliding' ? a.slide : a.kind === 'tumbling' ? a.size : 0;
    this.offset = a.kind === 'session' ? 0 : a.offset;
    this.numericAccs = p.aggs.every((g) => typeof g.create() === 'number');
    this.values = new Array(p.aggs.length);
    this.makeResult = resultMaker(p.keyFields, p.names);
  }

  open(ctx: StageContext): void {
    this.ctx = ctx;
    if (this.p.early !== undefined) this.nextEarly = ctx.clock.now() + this.p.early;
  }

  metrics(): { windowsOpen: number; lateEvents: number; windowResults: number } {
    return { windowsOpen: this.openWindows, lateEvents: this.lateCount, windowResults: this.results };
  }

  /** The current watermark (epoch ms; −Infinity before the first one). */
  get currentWatermark(): number {
    return this.wm;
  }

  process(batch: Batch<T>, out: Emitter<Record<string, unknown>>): Promise<void> {
    const p = this.p;
    const { records, meta } = batch;
    const n = records.length;
    const now = this.ctx.clock.now();
    const gen = p.generator;
    const extract = p.extract;
    const aggs = p.aggs;
    const getters = p.getters;
    const na = aggs.length;
    const scratch = this.scratch;
    const wm = p.processingTime ? now - 1 : this.wm;
    if (p.processingTime && wm > this.wm) {
      this.advance(wm);
      this.fireAll(); // before this batch's events can change those windows
    }
    const { size, step, offset, cks } = this;
    const aligned = step > 0;
    const lateness = p.lateness;
    const kf = p.keyFields;
    // Records go in chunks, each in two passes: the first computes the keys and looks up their
    // newest windows, the second does the work. The lookups of the first pass do not depend on
    // each other, so the CPU overlaps their cache misses (key strings, map entries — with many
    // keys, most of the time is spent waiting on memory) instead of taking them one by one.
    for (let c0 = 0; c0 < n; c0 += CHUNK) {
      const c1 = Math.min(c0 + CHUNK, n);
      if (kf !== undefined) this.lookAhead(records, c0, c1, aligned);
      for (let i = c0; i < c1; i++) {
        const r = records[i] as T;
        const m = meta?.[i];
        let ts: number;
        if (extract === undefined) ts = now;
        else {
          ts = extract(r, m);
          if (!Number.isFinite(ts)) {
            this.dead(r, describeBadTimestamp(p.timeField, r, p.timeFormat), m, 'time');
            continue;
          }
        }
        if (gen !== undefined) gen.observeMeta(ts, m, now);
        // Late: every window of the event is dropped already (sessions are judged on merge).
        let start = 0;
        if (aligned) {
          // Its newest window, by floor division rather than `%` (several times cheaper). The
          // quotient can round up to the next integer only for a fractional time: step back then.
          start = Math.floor((ts - offset) / step) * step + offset;
          if (start > ts) start -= step;
          if (start + size - 1 + lateness <= wm) {
            this.lateEvent(r, m, ts, wm, start + size);
            continue;
          }
        }
        // Key.
        let ck: string;
        let keyRec: Readonly<Record<string, unknown>> | undefined;
        if (kf !== undefined) {
          const k = cks[i - c0];
          if (k === undefined) {
            this.missingKey(r, m, kf.find((f) => isAbsent((r as Record<string, unknown>)[f])) as string);
            continue;
          }
          ck = k;
        } else if (p.keyFn !== undefined) {
          let kv: KeyValue;
          try {
            kv = p.keyFn(r);
          } catch (err) {
            this.dead(r, `the key function threw: ${errorMessage(err)}`, m, 'key');
            continue;
          }
          if (kv !== null && typeof kv === 'object') {
            keyRec = kv as Record<string, unknown>;
            ck = JSON.stringify(Object.values(kv));
          } else if (kv === undefined || kv === null) {
            this.dead(r, 'the key function returned no key', m, 'key');
            continue;
          } else {
            keyRec = { key: typeof kv === 'bigint' ? kv.toString() : kv };
            ck = `${typeof kv}:${String(kv)}`;
          }
        } else ck = '';
        // Aggregate inputs: all prepared before any window changes, so a bad value leaves no trace.
        let bad: unknown;
        for (let j = 0; j < na; j++) {
          try {
            scratch[j] = (aggs[j] as Aggregate).prepare((getters[j] as (r: unknown) => unknown)(r));
          } catch (err) {
            bad = err;
            break;
          }
        }
        if (bad !== undefined) {
          this.ctx.deadLetter(r, bad, m);
          continue;
        }
        if (aligned) {
          // The head `lookAhead` found, unless a record before it in the chunk made a newer one.
          let head = kf === undefined ? undefined : this.heads[i - c0];
          if (head === undefined || head.newer !== undefined) head = this.latest.get(ck);
          this.addAligned(r, ck, keyRec, ts, start, wm, head);
        } else this.addSession(r, m, ck, keyRec, ts, wm);
      }
    }
    if (!p.processingTime) {
      const next = Math.max(gen === undefined ? Number.NEGATIVE_INFINITY : gen.current(now), this.upstream);
      if (next > this.wm) this.advance(next);
    }
    return this.flush(out);
  }

  /**
   * First pass over records `c0…c1` (key fields only): puts each one's key in `cks` (undefined
   * when a key field is missing) and, for tumbling/sliding windows, the key's newest window in
   * `heads`. Reads records and state only; changes nothing.
   */
  private lookAhead(records: readonly T[], c0: number, c1: number, aligned: boolean): void {
    const { cks, heads, latest } = this;
    const kf = this.p.keyFields as string[];
    const pairs = kf.length === 2 ? this.pairKeys : undefined;
    for (let i = c0; i < c1; i++) {
      const r = records[i] as Record<string, unknown>;
      const ck = pairs === undefined ? fieldKey(r, kf) : this.pairKey(r, kf, pairs);
      cks[i - c0] = ck;
      if (aligned && ck !== undefined) heads[i - c0] = latest.get(ck);
    }
  }

  /**
   * The key of two key fields through a cache of keys by value pair (both strings): no string is
   * built and hashed per record — the values (interned by the CSV decoder, say) and the cached key
   * have their hashes already. The cache is cleared when it holds more than `PAIR_KEYS` keys.
   */
  private pairKey(
    r: Record<string, unknown>,
    kf: readonly string[],
    pairs: Map<string, Map<string, string>>,
  ): string | undefined {
    const a = r[kf[0] as string];
    const b = r[kf[1] as string];
    if (typeof a !== 'string' || typeof b !== 'string') return fieldKey(r, kf);
    let inner = pairs.get(a);
    let ck = inner?.get(b);
    if (ck === undefined) {
      if (this.pairCount >= PAIR_KEYS) {
        pairs.clear();
        this.pairCount = 0;
        inner = undefined;
      }
      if (inner === undefined) {
        inner = new Map();
        pairs.set(a, inner);
      }
      ck = `${a}\u0000${b}`;
      inner.set(b, ck);
      this.pairCount++;
    }
    return ck;
  }

  /**
   * Adds the prepared inputs to every window of the event at `ts` whose newest window starts at
   * `start` (tumbling: that one; sliding: `size / slide` of them, except those dropped already),
   * creating the windows that do not exist yet.
   */
  private addAligned(
    r: T,
    ck: string,
    keyRec: Readonly<Record<string, unknown>> | undefined,
    ts: number,
    start: number,
    wm: number,
    head: AlignedWin | undefined,
  ): void {
    const { size, step } = this;
    const lateness = this.p.lateness;
    // Walk the key's windows (newest first) alongside the event's windows (newest first).
    let w = head;
    let newer: AlignedWin | undefined;
    for (let s = start; s > ts - size; s -= step) {
      if (s + size - 1 + lateness <= wm) break; // older windows of a sliding event are dropped too
      while (w !== undefined && w.b.start > s) {
        newer = w;
        w = w.older;
      }
      if (w === undefined || w.b.start !== s) {
        if (w !== undefined && w.b === PURGED)
          w = this.revive(w, keyRec, s); // w is the head
        else {
          // The key's record is shared by all its windows; only a key's first window builds it.
          const kr = keyRec ?? (newer ?? w)?.keyRec ?? this.keyRecord(r);
          w = this.newAligned(ck, kr, s, newer, w);
        }
      }
      this.addTo(w, ts);
      if (w.b.fired && !w.queued) {
        w.queued = true;
        this.pending.push(w);
      }
      newer = w;
      w = w.older;
    }
  }

  /** The bucket of windows starting at `start`, created when missing. */
  private bucketAt(start: number): Bucket {
    let b = this.lastBucket;
    if (b === undefined || b.start !== start) {
      b = this.buckets.get(start) ?? this.newBucket(start, start + this.size);
      this.lastBucket = b;
    }
    return b;
  }

  /** A new window of key `ck` starting at `start`, linked between `newer` and `older`. */
  private newAligned(
    ck: string,
    keyRec: Readonly<Record<string, unknown>>,
    start: number,
    newer: AlignedWin | undefined,
    older: AlignedWin | undefined,
  ): AlignedWin {
    const b = this.bucketAt(start);
    const w: AlignedWin = {
      ck,
      keyRec,
      accs: this.newAccs(),
      revision: 0,
      dirty: false,
      queued: false,
      n: 0,
      b,
      older,
      newer,
      diedAt: 0,
    };
    b.wins.push(w);
    if (older !== undefined) older.newer = w;
    if (newer !== undefined) newer.older = w;
    else this.latest.set(ck, w);
    this.openWindows++;
    return w;
  }

  /**
   * Reuses a husk (see `purge`) as its key's new window starting at `start`: no allocation, and
   * its entry in `latest` stays as it is.
   */
  private revive(
    w: AlignedWin,
    keyRec: Readonly<Record<string, unknown>> | undefined,
    start: number,
  ): AlignedWin {
    const b = this.bucketAt(start);
    if (keyRec !== undefined) w.keyRec = keyRec;
    if (w.accs === NO_ACCS) w.accs = this.newAccs();
    else {
      const aggs = this.p.aggs;
      const accs = w.accs;
      for (let j = 0; j < aggs.length; j++) accs[j] = (aggs[j] as Aggregate).create();
    }
    w.revision = 0;
    w.dirty = false;
    w.queued = false;
    w.n = 0;
    w.b = b;
    b.wins.push(w);
    this.openWindows++;
    return w;
  }

  /**
   * Takes a purged window out of its key's list. Buckets are purged oldest first, so `w` is its
   * key's oldest window. When it is also the newest — the key had no event since — it stays in
   * `latest` as a husk that the key's next window reuses (no map delete and re-insert, no new
   * object); husks not reused within one more bucket purge are deleted by `dropHusks`.
   */
  private purge(w: AlignedWin): void {
    const { newer, older } = w;
    if (older !== undefined) older.newer = newer;
    if (newer !== undefined) {
      newer.older = older;
      return;
    }
    if (older !== undefined) {
      this.latest.set(w.ck, older);
      return;
    }
    w.b = PURGED;
    w.older = undefined;
    // Accumulators that are objects (sketches…) are released now; numbers are simply reset on reuse.
    if (!this.numericAccs) w.accs = NO_ACCS;
    w.diedAt = this.purges;
    this.husks.push(w);
  }

  /**
   * Called after each purge of buckets: deletes the husks of the purge before this one that were
   * not reused since, so `latest` holds only keys seen within about two bucket lengths.
   */
  private dropHusks(): void {
    const old = this.oldHusks;
    const epoch = this.purges - 1;
    for (const h of old) if (h.b === PURGED && h.diedAt === epoch) this.latest.delete(h.ck);
    old.length = 0;
    this.oldHusks = this.husks;
    this.husks = old;
    this.purges++;
  }

  private newBucket(start: number, end: number): Bucket {
    const b: Bucket = {
      start,
      end,
      startIso: iso(start),
      endIso: iso(end),
      wins: [],
      fired: false,
    };
    this.buckets.set(start, b);
    const s = this.starts;
    if (s.length === 0 || (s[s.length - 1] as number) < start) s.push(start);
    else {
      let lo = 0;
      let hi = s.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((s[mid] as number) < start) lo = mid + 1;
        else hi = mid;
      }
      s.splice(lo, 0, start);
    }
    return b;
  }

  private newAccs(): unknown[] {
    const aggs = this.p.aggs;
    const accs = new Array(aggs.length);
    for (let j = 0; j < aggs.length; j++) accs[j] = (aggs[j] as Aggregate).create();
    return accs;
  }

  private newWin(ck: string, keyRec: Readonly<Record<string, unknown>>, start: number, end: number): Win {
    this.openWindows++;
    return {
      ck,
      keyRec,
      accs: this.newAccs(),
      revision: 0,
      dirty: false,
      queued: false,
      n: 0,
      start,
      end,
      closed: false,
      alive: true,
    };
  }

  private keyRecord(r: T): Readonly<Record<string, unknown>> {
    const kf = this.p.keyFields;
    if (kf === undefined) return {};
    const o: Record<string, unknown> = {};
    for (const k of kf) {
      const v = (r as Record<string, unknown>)[k];
      o[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    return o;
  }

  /** Adds the prepared inputs in `scratch` to `w`. */
  private addTo(w: Win | AlignedWin, ts: number): void {
    const aggs = this.p.aggs;
    const scratch = this.scratch;
    const accs = w.accs;
    for (let j = 0; j < aggs.length; j++) {
      const v = scratch[j];
      if (v !== SKIP) accs[j] = (aggs[j] as Aggregate).add(accs[j], v, ts);
    }
    w.dirty = true;
    const c = this.p.countTrigger;
    if (c !== undefined && ++w.n >= c && !w.queued) {
      w.queued = true;
      this.pending.push(w);
    }
  }

  private addSession(
    r: T,
    m: RecordMeta | undefined,
    ck: string,
    keyRec: Readonly<Record<string, unknown>> | undefined,
    ts: number,
    wm: number,
  ): void {
    const gap = (this.p.assigner as { gap: number }).gap;
    let start = ts;
    let end = ts + gap;
    const list = this.sessions.get(ck);
    // Sessions of this key that overlap [ts, ts + gap) merge with it.
    let hits: Win[] | undefined;
    if (list !== undefined) {
      for (const s of list) {
        if (s.start < end && start < s.end) {
          if (hits === undefined) hits = [];
          hits.push(s);
        }
      }
    }
    if (hits === undefined) {
      if (end - 1 + this.p.lateness <= wm) {
        this.lateEvent(r, m, ts, wm, end, true);
        return;
      }
      const w = this.newWin(ck, keyRec ?? this.keyRecord(r), start, end);
      this.addTo(w, ts);
      if (list === undefined) this.sessions.set(ck, [w]);
      else list.push(w);
      this.schedule(w);
      if (end - 1 <= wm) this.closeLate(w);
      return;
    }
    // Merge every hit into the one with the earliest start; the others are retracted if shown.
    for (const s of hits) {
      if (s.start < start) start = s.start;
      if (s.end > end) end = s.end;
    }
    hits.sort((x, y) => x.start - y.start);
    const w = hits[0] as Win;
    const aggs = this.p.aggs;
    for (let k = 1; k < hits.length; k++) {
      const s = hits[k] as Win;
      for (let j = 0; j < aggs.length; j++) w.accs[j] = (aggs[j] as Aggregate).merge(w.accs[j], s.accs[j]);
      if (s.revision > w.revision) w.revision = s.revision;
      w.n += s.n;
      if (s.revision > 0) this.retract(s);
      s.alive = false;
      this.openWindows--;
      (list as Win[]).splice((list as Win[]).indexOf(s), 1);
    }
    if (start < w.start) {
      if (w.revision > 0) this.retract(w);
      w.start = start;
    }
    const grew = end !== w.end || hits.length > 1;
    w.end = end;
    this.addTo(w, ts);
    if (grew) this.schedule(w);
    if (w.end - 1 <= wm) this.closeLate(w);
    else w.closed = false;
  }

  /** A session that is already past its end: its result goes out after this batch. */
  private closeLate(w: Win): void {
    w.closed = true;
    if (!w.queued) {
      w.queued = true;
      this.pending.push(w);
    }
  }

  private schedule(w: Win): void {
    this.fireHeap.push({ t: w.end - 1, w, end: w.end });
    this.purgeHeap.push({ t: w.end - 1 + this.p.lateness, w, end: w.end });
  }

  private retract(s: Win): void {
    s.revision++;
    this.results++;
    this.out.push({
      ...s.keyRec,
      windowStart: iso(s.start),
      windowEnd: iso(s.end),
      revision: s.revision,
      update: true,
      retracted: true,
    });
  }

  private lateEvent(
    r: T,
    m: RecordMeta | undefined,
    ts: number,
    wm: number,
    end: number,
    session = false,
  ): void {
    this.lateCount++;
    const lateness = wm - (end - 1 + this.p.lateness);
    if (this.p.late === undefined) {
      this.dead(
        r,
        `the event (time ${iso(ts)}) is later than allowedLateness: the watermark is ${iso(wm)}, ${lateness} ms past the point its ${session ? 'session' : 'window'} was dropped; set \`late:\` to send late events to a side output`,
        m,
        'late',
      );
      return;
    }
    this.lateRecs.push({ event: r, eventTime: iso(ts), watermark: iso(wm), latenessMs: lateness });
    this.lateMeta.push(m);
  }

  private missingKey(r: T, m: RecordMeta | undefined, field: string): void {
    this.dead(r, `the record has no key field \`${field}\``, m, 'key');
  }

  private dead(r: unknown, message: string, m: RecordMeta | undefined, what: string): void {
    this.ctx.deadLetter(
      r,
      new SluiceError(ErrorCode.RECORD, message, { stage: this.ctx.name, reason: what }),
      m,
    );
  }

  private result(w: WinState, startIso: string, endIso: string): void {
    w.revision++;
    w.dirty = false;
    w.n = 0;
    this.results++;
    const aggs = this.p.aggs;
    const values = this.values;
    for (let j = 0; j < aggs.length; j++) values[j] = (aggs[j] as Aggregate).result(w.accs[j]);
    this.out.push(this.makeResult(w.keyRec, startIso, endIso, values, w.revision));
  }

  /** Moves the watermark to `wm`: fires windows whose end it reached, drops those past lateness. */
  private advance(wm: number): void {
    this.fireAll();
    this.wm = wm;
    // Results queued during the batch (late updates, count firings) go before the firings they
    // may duplicate; a window already emitted and clean is not emitted again.
    this.drainPending();
    const lateness = this.p.lateness;
    if (this.p.assigner.kind === 'session') {
      for (let e = this.fireHeap.peek(); e !== undefined && e.t <= wm; e = this.fireHeap.peek()) {
        this.fireHeap.pop();
        const w = e.w;
        if (!w.alive || w.end !== e.end) continue;
        w.closed = true;
        if (w.dirty) this.result(w, iso(w.start), iso(w.end));
      }
      for (let e = this.purgeHeap.peek(); e !== undefined && e.t <= wm; e = this.purgeHeap.peek()) {
        this.purgeHeap.pop();
        const w = e.w;
        if (!w.alive || w.end !== e.end) continue;
        w.alive = false;
        this.openWindows--;
        const list = this.sessions.get(w.ck) as Win[];
        list.splice(list.indexOf(w), 1);
        if (list.length === 0) this.sessions.delete(w.ck);
      }
      return;
    }
    // Buckets fire once the watermark reaches their end and are dropped once it passes their
    // allowed lateness too (a prefix of the fired ones, as buckets are sorted and equally long).
    // Firing is queued: `flush` makes the results in bounded batches, each emitted before the
    // next is made, so a bucket of many keys is never one huge batch (which would outlive the
    // young generation); a bucket that fires and is dropped at once gets one pass over its windows.
    const starts = this.starts;
    let drop = 0;
    for (let i = 0; i < starts.length; i++) {
      if ((this.buckets.get(starts[i] as number) as Bucket).end - 1 + lateness > wm) break;
      drop++;
    }
    if (drop > 0) this.dropHusks(); // before this purge makes new husks
    for (let i = 0; i < starts.length; i++) {
      const b = this.buckets.get(starts[i] as number) as Bucket;
      if (b.end - 1 > wm) break;
      const gone = i < drop;
      if (!b.fired) {
        b.fired = true;
        this.firing.push({ b, gone, next: 0 });
      } else if (gone) for (const w of b.wins) this.purge(w);
      if (!gone) continue;
      this.buckets.delete(b.start);
      this.openWindows -= b.wins.length;
      if (this.lastBucket === b) this.lastBucket = undefined;
    }
    if (drop > 0) this.starts = starts.slice(drop);
  }

  /**
   * Makes the results of queued firings (see `advance`) until `this.out` holds `limit` records or
   * none is left, purging the windows of dropped buckets as it goes.
   */
  private fireSome(limit: number): void {
    const firing = this.firing;
    while (firing.length > 0 && this.out.length < limit) {
      const f = firing[0] as Firing;
      const { b, gone } = f;
      const wins = b.wins;
      let i = f.next;
      for (; i < wins.length && this.out.length < limit; i++) {
        const w = wins[i] as AlignedWin;
        if (w.dirty) this.result(w, b.startIso, b.endIso);
        if (gone) this.purge(w);
      }
      f.next = i;
      if (i === wins.length) firing.shift();
    }
  }

  private fireAll(): void {
    if (this.firing.length > 0) this.fireSome(Number.POSITIVE_INFINITY);
  }

  private drainPending(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    for (const w of pending) {
      w.queued = false;
      if (!w.dirty) continue;
      if ('b' in w) this.result(w, w.b.startIso, w.b.endIso);
      else if (w.alive) this.result(w, iso(w.start), iso(w.end));
    }
    this.pending = [];
  }

  /** Sends what this call produced: results, then late events, then the watermark. */
  private async flush(out: Emitter<Record<string, unknown>>): Promise<void> {
    this.drainPending();
    for (;;) {
      this.fireSome(RESULT_BATCH);
      if (this.out.length === 0) break;
      const recs = this.out;
      this.out = [];
      await out.emit(batchOf(recs));
    }
    if (this.lateRecs.length > 0) {
      const recs = this.lateRecs;
      const metas = this.lateMeta;
      this.lateRecs = [];
      this.lateMeta = [];
      await out.emit(batchOf(recs as unknown as Record<string, unknown>[], metas), this.p.late);
    }
    if (this.wm > this.forwarded && this.wm !== Number.POSITIVE_INFINITY) {
      this.forwarded = this.wm;
      await out.signal(watermark(this.wm));
    }
  }

  onSignal(signal: Signal, out: Emitter<Record<string, unknown>>): Promise<void> | void {
    if (signal.kind === 'barrier') return out.signal(signal);
    if (this.p.processingTime) return;
    if (signal.time > this.upstream) this.upstream = signal.time;
    if (this.upstream > this.wm) this.advance(this.upstream);
    return this.flush(out);
  }

  nextTimer(): number | undefined {
    let t = this.nextEarly;
    const p = this.p;
    if (p.processingTime) {
      const first = this.starts[0];
      if (first !== undefined) {
        const b = this.buckets.get(first) as Bucket;
        if (t === undefined || b.end < t) t = b.end;
      }
    } else if (p.generator !== undefined) {
      const idle = p.generator.nextIdleCheck();
      if (idle !== undefined && (t === undefined || idle < t)) t = idle;
    }
    return t;
  }

  onTimer(now: number, out: Emitter<Record<string, unknown>>): Promise<void> {
    const p = this.p;
    if (p.processingTime) {
      if (now - 1 > this.wm) this.advance(now - 1);
    } else if (p.generator !== undefined) {
      const next = Math.max(p.generator.current(now), this.upstream);
      if (next > this.wm) this.advance(next);
    }
    if (this.nextEarly !== undefined && now >= this.nextEarly) {
      this.earlyFiring();
      this.nextEarly = now + (p.early as number);
    }
    return this.flush(out);
  }

  /** Early results of every window that changed since its last result and has not closed. */
  private earlyFiring(): void {
    this.fireAll();
    if (this.p.assigner.kind === 'session') {
      for (const list of this.sessions.values())
        for (const w of list) if (w.dirty && !w.closed) this.result(w, iso(w.start), iso(w.end));
      return;
    }
    for (const start of this.starts) {
      const b = this.buckets.get(start) as Bucket;
      if (b.fired) continue;
      for (const w of b.wins) if (w.dirty) this.result(w, b.startIso, b.endIso);
    }
  }

  finish(out: Emitter<Record<string, unknown>>): Promise<void> {
    // End of input: nothing more can arrive, so every window gets its final result.
    this.advance(Number.POSITIVE_INFINITY);
    return this.flush(out);
  }

  /** Checkpoint state: watermarks and every live window with its saved accumulators. */
  snapshot(): WindowSnapshot {
    const aggs = this.p.aggs;
    const windows: SavedWindow[] = [];
    const save = (w: WinState, start: number, end: number, closed: boolean) =>
      windows.push({
        ck: w.ck,
        key: w.keyRec,
        start,
        end,
        accs: w.accs.map((a, j) => (aggs[j] as Aggregate).save(a)),
        revision: w.revision,
        dirty: w.dirty,
        closed,
        n: w.n,
      });
    for (const b of this.buckets.values()) for (const w of b.wins) save(w, b.start, b.end, b.fired);
    for (const list of this.sessions.values()) for (const w of list) save(w, w.start, w.end, w.closed);
    return {
      version: 1,
      wm: this.wm,
      upstream: this.upstream,
      forwarded: this.forwarded,
      generator: this.p.generator?.save(),
      windows,
    };
  }

  /** Rebuilds the state {@link WindowOperator.snapshot} returned. */
  restore(state: unknown): void {
    const s = state as WindowSnapshot;
    if (s?.version !== 1)
      throw new SluiceError(
        ErrorCode.STAGE,
        `restoring a window: its saved state has version ${JSON.stringify(s?.version ?? null)}, this build reads version 1; delete the checkpoint folder to start over`,
      );
    const aggs = this.p.aggs;
    this.wm = s.wm;
    this.upstream = s.upstream;
    this.forwarded = s.forwarded;
    if (s.generator !== undefined) this.p.generator?.load(s.generator, this.ctx?.clock.now() ?? 0);
    this.buckets.clear();
    this.starts = [];
    this.lastBucket = undefined;
    this.latest.clear();
    this.firing = [];
    this.husks = [];
    this.oldHusks = [];
    this.sessions.clear();
    this.fireHeap.clear();
    this.purgeHeap.clear();
    this.openWindows = 0;
    const session = this.p.assigner.kind === 'session';
    // Aligned windows oldest first, so each one becomes the head of its key's list.
    const saved = session ? s.windows : [...s.windows].sort((x, y) => x.start - y.start);
    for (const sw of saved) {
      let w: Win | AlignedWin;
      if (session) {
        const sess = this.newWin(sw.ck, sw.key, sw.start, sw.end);
        sess.closed = sw.closed;
        const list = this.sessions.get(sw.ck);
        if (list === undefined) this.sessions.set(sw.ck, [sess]);
        else list.push(sess);
        this.schedule(sess);
        w = sess;
      } else {
        w = this.newAligned(sw.ck, sw.key, sw.start, undefined, this.latest.get(sw.ck));
        if (sw.closed) w.b.fired = true;
      }
      w.accs = sw.accs.map((a, j) => (aggs[j] as Aggregate).load(a));
      w.revision = sw.revision;
      w.dirty = sw.dirty;
      w.n = sw.n;
    }
  }
}

/** One window in a {@link WindowSnapshot}. */
export interface SavedWindow {
  readonly ck: string;
  readonly key: Readonly<Record<string, unknown>>;
  readonly start: number;
  readonly end: number;
  readonly accs: readonly unknown[];
  readonly revision: number;
  readonly dirty: boolean;
  readonly closed: boolean;
  readonly n: number;
}

/** What {@link WindowOperator.snapshot} returns (structured-cloneable). */
export interface WindowSnapshot {
  readonly version: 1;
  readonly wm: number;
  readonly upstream: number;
  readonly forwarded: number;
  readonly generator: ReturnType<WatermarkGenerator['save']> | undefined;
  readonly windows: readonly SavedWindow[];
}
