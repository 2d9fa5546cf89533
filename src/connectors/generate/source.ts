/**
 * The `generate` source: deterministic synthetic events for demos, tests and benchmarks.
 *
 * Records look like a web and payments event stream (`event_type`: view, login, click, transfer, purchase, logout):
 * `{ id: 7, ts: '2026-01-01T00:00:00.070Z', user: 'u123', country: 'DE', event_type: 'login', risk: 42, amount: '12.34' }`.
 * Repeated strings (users, countries, event types) come from small pre-built sets, so they
 * are shared, as they would be after interning a real input. Money is a decimal string.
 */

import { setImmediate } from 'node:timers/promises';
import { cancelledError, ErrorCode, SluiceError } from '../../core/errors.ts';
import type { Batch } from '../../core/message.ts';
import type { Source } from '../../core/stage.ts';

/** One generated event. Field names follow the examples of the pipeline docs. */
export interface GeneratedEvent {
  /** 0, 1, 2… in generation order. */
  id: number;
  /** Event time, ISO-8601 UTC: `startTime + id × intervalMs`, minus up to `disorderMs`. */
  ts: string;
  /** One of `userCount` users, `u0`…`u<n-1>`. */
  user: string;
  /** An ISO country code from a small set. */
  country: string;
  /** `login`, `logout`, `view`, `click`, `purchase`, `transfer` (views and logins most often). */
  event_type: string;
  /** Risk score, a whole number 0–100. */
  risk: number;
  /** Amount with two decimals as a string (exact money), `0.00`–`999.99`. */
  amount: string;
}

/** The fields a generated record may have. */
export type GeneratedField = keyof GeneratedEvent;

/** Every field, in output order. */
export const GENERATED_FIELDS: readonly GeneratedField[] = [
  'id',
  'ts',
  'user',
  'country',
  'event_type',
  'risk',
  'amount',
];

/** Options of an {@link EventGenerator}. */
export interface EventGeneratorOptions {
  /** Seed of the pseudo-random sequence: the same seed gives the same records. Default 1. */
  seed?: number;
  /** Event time of record 0, epoch ms. Default 2026-01-01T00:00:00Z. */
  startTime?: number;
  /** Event-time step between consecutive records. Default 10 ms. */
  intervalMs?: number;
  /** Each event time is moved back by a random 0…`disorderMs` ms (out-of-order data). Default 0. */
  disorderMs?: number;
  /** How many distinct users. Default 1000. */
  userCount?: number;
}

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'ES', 'IT', 'PL', 'SE', 'BR', 'IN', 'JP'];
// Weighted by repetition: views and logins are the common case.
const EVENT_TYPES = [
  'view',
  'view',
  'view',
  'view',
  'login',
  'login',
  'login',
  'click',
  'click',
  'logout',
  'purchase',
  'transfer',
];
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DEFAULT_START = Date.UTC(2026, 0, 1);

/**
 * Generates {@link GeneratedEvent}s from a seed.
 *
 * The pseudo-random numbers come from mulberry32, written here by hand rather than taken
 * from `Math.random` (which cannot be seeded) or `crypto` (not reproducible and far slower):
 * one 32-bit state, a few integer operations per number, and the same sequence on every
 * platform and Node version, which is what makes a seed reproduce a run.
 *
 * @example
 * const gen = new EventGenerator({ seed: 42 });
 * const first = gen.next(); // always the same record for seed 42
 */
export class EventGenerator {
  private state: number;
  private id = 0;
  private readonly startTime: number;
  private readonly intervalMs: number;
  private readonly disorderMs: number;
  private readonly users: string[];
  private cachedSecond = Number.NaN;
  private cachedPrefix = '';

  constructor(options: EventGeneratorOptions = {}) {
    this.state = (options.seed ?? 1) >>> 0;
    this.startTime = options.startTime ?? DEFAULT_START;
    this.intervalMs = options.intervalMs ?? 10;
    this.disorderMs = Math.max(0, Math.floor(options.disorderMs ?? 0));
    const userCount = options.userCount ?? 1000;
    if (!Number.isInteger(userCount) || userCount < 1) {
      throw new SluiceError(ErrorCode.CONFIG, `userCount must be a whole number ≥ 1, got ${userCount}`);
    }
    this.users = Array.from({ length: userCount }, (_, i) => `u${i}`);
  }

  /** The next pseudo-random unsigned 32-bit integer (mulberry32). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** The next event. */
  next(): GeneratedEvent {
    const id = this.id++;
    let time = this.startTime + id * this.intervalMs;
    if (this.disorderMs > 0) time -= this.nextUint32() % (this.disorderMs + 1);
    const cents = this.nextUint32() % 100000;
    return {
      id,
      ts: this.iso(time),
      user: this.users[this.nextUint32() % this.users.length] as string,
      country: COUNTRIES[this.nextUint32() % COUNTRIES.length] as string,
      event_type: EVENT_TYPES[this.nextUint32() % EVENT_TYPES.length] as string,
      risk: this.nextUint32() % 101,
      amount: `${(cents / 100) | 0}.${TWO_DIGITS[cents % 100]}`,
    };
  }

  /**
   * Skips the next `n` events in constant time, as if `n` calls of {@link next} were made: the
   * state of mulberry32 only moves by a constant per number, and each event draws a fixed count.
   */
  skip(n: number): void {
    const draws = this.disorderMs > 0 ? 6 : 5;
    // (n × draws) mod 2³², exact while n × draws < 2⁵³.
    const steps = (n * draws) % 4_294_967_296;
    this.state = (this.state + Math.imul(steps >>> 0, 0x6d2b79f5)) | 0;
    this.id += n;
  }

  /** The next `n` events as an array. */
  take(n: number): GeneratedEvent[] {
    const out = new Array<GeneratedEvent>(n);
    for (let i = 0; i < n; i++) out[i] = this.next();
    return out;
  }

  /** How many events were generated so far. */
  get generated(): number {
    return this.id;
  }

  /** ISO-8601 of `ms`, with the date part cached per second (toISOString per record is slow). */
  private iso(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.cachedSecond) {
      this.cachedSecond = second;
      this.cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    }
    return `${this.cachedPrefix}${THREE_DIGITS[ms - second * 1000]}Z`;
  }
}

/** Options of {@link generateSource}. */
export interface GenerateSourceOptions extends EventGeneratorOptions {
  /** Records to produce; omitted: unbounded, until the run is stopped. */
  count?: number | undefined;
  /** Records per second (through the run's clock); omitted: as fast as downstream takes them. */
  rate?: number | undefined;
  /** Records per batch. Default 1024. With a `rate`, at most `rate / 10` (a batch every 100 ms or more often). */
  batchSize?: number | undefined;
  /** Keep only these fields of each record, in this order. Default: all. */
  fields?: readonly GeneratedField[] | undefined;
}

/** A {@link Source} of generated events; see {@link generateSource}. */
export interface GenerateSource extends Source<Partial<GeneratedEvent>> {
  /** Records produced so far. */
  position(): { generated: number };
  /** Records produced of `count` (no total when unbounded). */
  progress(): { done: number; total?: number; unit: 'records' };
}

/** Batches an unpaced generate source emits between two turns it leaves to the event loop. */
const YIELD_EVERY_BATCHES = 64;

/**
 * A source of deterministic synthetic events: the same options (and seed) give the same
 * records. With `rate`, it sleeps through `ctx.clock` between batches, so a test drives it
 * with a ManualClock and a stop or cancel interrupts the sleep. A graceful stop ends it
 * between batches. Records carry no meta (their `id` says where they are). Under checkpoints it
 * resumes at its position (records generated): the same seed and options give the records from
 * there on, so a restart neither repeats nor skips one.
 *
 * @example
 * new Pipeline('demo').from(generateSource({ count: 1000, seed: 7 })).to(sink);
 */
export function generateSource(options: GenerateSourceOptions = {}): GenerateSource {
  const { count, rate, fields } = options;
  const batchSize = options.batchSize ?? 1024;
  if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
    throw new SluiceError(ErrorCode.CONFIG, `count must be a whole number ≥ 0, got ${count}`);
  }
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) {
    throw new SluiceError(ErrorCode.CONFIG, `rate must be a number > 0 (records per second), got ${rate}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `batchSize must be a whole number ≥ 1, got ${batchSize}`);
  }
  const gen = new EventGenerator(options);
  const perBatch = rate === undefined ? batchSize : Math.max(1, Math.min(batchSize, Math.ceil(rate / 10)));
  const project =
    fields === undefined || fields.length === GENERATED_FIELDS.length ? undefined : pick(fields);

  return {
    async run(out, ctx) {
      const limit = count ?? Number.POSITIVE_INFINITY;
      const clock = ctx.clock;
      const wake = rate === undefined ? undefined : AbortSignal.any([ctx.signal, ctx.stopSignal]);
      const t0 = clock.now();
      // A restored run goes on from `gen.generated`; the rate paces what this run produces.
      const start = gen.generated;
      let produced = 0;
      let emitted = 0;
      while (start + produced < limit) {
        if (ctx.stopSignal.aborted) return;
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        if (rate !== undefined) {
          const wait = t0 + (produced * 1000) / rate - clock.now();
          if (wait > 0) {
            try {
              await clock.sleep(wait, wake);
            } catch (err) {
              if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
              if (ctx.stopSignal.aborted) return;
              throw err;
            }
          }
        }
        const n = Math.min(perBatch, limit - start - produced);
        const records = gen.take(n);
        const batch: Batch<Partial<GeneratedEvent>> = {
          kind: 'batch',
          records: project ? records.map(project) : records,
        };
        produced += n;
        await out.emit(batch);
        // Without a rate nothing here waits for a timer or I/O, and into sinks that do none
        // either (blackhole, steps in between) every `await` resolves at once: the event loop
        // would never run, and with it no Ctrl-C/SIGTERM handler, status line or stop. Let it
        // run every so often (a few microseconds per 64 batches).
        if (rate === undefined && ++emitted % YIELD_EVERY_BATCHES === 0) await setImmediate();
      }
    },
    idleBarriers: true,
    position() {
      return { generated: gen.generated };
    },
    restore(position) {
      const n = (position as { generated?: unknown }).generated;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the checkpoint's position of the generate source is damaged (${JSON.stringify(position)}); delete the checkpoint folder to start over`,
        );
      }
      // The same options give the same records, so record n onwards is exactly what follows.
      gen.skip(n - gen.generated);
    },
    progress() {
      return count === undefined
        ? { done: gen.generated, unit: 'records' }
        : { done: gen.generated, total: count, unit: 'records' };
    },
  };
}

function pick(fields: readonly GeneratedField[]): (e: GeneratedEvent) => Partial<GeneratedEvent> {
  return (e) => {
    const o: Partial<GeneratedEvent> = {};
    for (const f of fields) (o as Record<string, unknown>)[f] = e[f];
    return o;
  };
}
