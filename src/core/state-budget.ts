/**
 * The run's memory budget for keyed state held on the heap (window accumulators…): each stateful
 * operator reports, once per batch, how many keys (windows) it holds and an estimate of their
 * bytes; when the sum over the run passes `maxStateBytes`, or one operator passes its own
 * `maxKeys`, the report throws a `SLUICE_STATE_LIMIT` error that names the stage, the count, the
 * estimate and what to do — while the process still has room to fail cleanly (close its sinks,
 * remove temporary files), instead of V8 aborting with "heap out of memory" (exit 134).
 *
 * The estimate is the operator's: windows count their live windows times a per-window size made
 * of a fixed overhead, the key and each aggregate's known accumulator size (a DDSketch ≈ 2.5 KB,
 * a HyperLogLog up to 4 KiB of registers…). It is an estimate: the default limit, half of V8's
 * heap limit, leaves the other half for snapshots, results in flight and the rest of the run.
 */
import { getHeapStatistics } from 'node:v8';
import { ErrorCode, SluiceError } from './errors.ts';
import type { StageContext } from './stage.ts';

/**
 * Half of V8's old-generation limit (`--max-old-space-size`): the default `maxStateBytes`. V8
 * reports the whole heap's limit, which also counts the young generation (~200 MB on a 64-bit
 * Node 24 whatever the old space): without taking it out, a 200 MB heap would get a 205 MB budget.
 */
export function defaultMaxStateBytes(): number {
  const heap = getHeapStatistics().heap_size_limit;
  return Math.floor((heap - Math.min(256 * 1024 * 1024, heap / 2)) / 2);
}

/** `n` bytes for a message: `512 B`, `3.4 MB`, `1.20 GB`. */
export function formatStateBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** What one operator holds, as it reports it to {@link StateBudget.report}. */
export interface StateUsage {
  /** Keys (for a window: live windows, each one key in one window). */
  readonly keys: number;
  /** Estimated heap bytes of that state. */
  readonly bytes: number;
  /** The per-key estimate and what it is made of, for the error (`~2.9 KB per window: percentile 2.5 KB, …`). */
  readonly perKey: string;
  /** What the keys are, plural (`windows`, `keys`). */
  readonly noun: string;
  /** The operator's own limit on `keys`, if any (its `maxKeys`). */
  readonly maxKeys?: number | undefined;
  /** Ways this operator's state could shrink, in words, each a short imperative. */
  readonly remedies: readonly string[];
}

/**
 * The budget shared by the stateful operators of one run; get it with {@link stateBudgetOf}.
 * Reports are synchronous and cost a few additions: call once per batch, not per record.
 */
export class StateBudget {
  /** Bytes of state the run may hold, over every operator. */
  readonly maxStateBytes: number;
  /** Whether `maxStateBytes` was set by the pipeline (else the default from the heap limit). */
  private readonly explicit: boolean;
  private readonly byStage = new Map<string, number>();
  private total = 0;

  constructor(maxStateBytes?: number) {
    if (maxStateBytes !== undefined && !(maxStateBytes > 0))
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`maxStateBytes\` must be a positive number of bytes, got ${maxStateBytes}`,
      );
    this.explicit = maxStateBytes !== undefined;
    this.maxStateBytes = maxStateBytes ?? defaultMaxStateBytes();
  }

  /** Estimated bytes over every operator, as last reported. */
  get totalBytes(): number {
    return this.total;
  }

  /**
   * Records what stage `stage` holds now (replacing its previous report). Throws a
   * `SLUICE_STATE_LIMIT` error when `usage.keys` passes `usage.maxKeys`, or when the run's total
   * passes `maxStateBytes`.
   */
  report(stage: string, usage: StateUsage): void {
    const before = this.byStage.get(stage) ?? 0;
    this.byStage.set(stage, usage.bytes);
    this.total += usage.bytes - before;
    // The words are made only for an error: `toLocaleString` per batch was a measurable cost.
    const count = () => `${usage.keys.toLocaleString('en-US')} ${usage.noun}`;
    const estimate = () => `about ${formatStateBytes(usage.bytes)} (${usage.perKey})`;
    if (usage.maxKeys !== undefined && usage.keys > usage.maxKeys)
      throw this.error(
        stage,
        `holds ${count()}, above its \`maxKeys: ${usage.maxKeys}\`; that is ${estimate()}`,
        [`raise \`maxKeys\``, ...usage.remedies],
        usage,
      );
    if (this.total > this.maxStateBytes) {
      const others = this.total - usage.bytes;
      const limit = this.explicit
        ? `\`maxStateBytes\` (${formatStateBytes(this.maxStateBytes)})`
        : `the state budget (${formatStateBytes(this.maxStateBytes)}, half of the heap's old space; set \`maxStateBytes\` to change it)`;
      throw this.error(
        stage,
        `holds ${count()}, ${estimate()}${others > 0 ? `, and other stages ${formatStateBytes(others)}` : ''}: above ${limit}`,
        [
          this.explicit
            ? 'raise `maxStateBytes`'
            : 'raise the heap (`NODE_OPTIONS=--max-old-space-size=MB`) or set `maxStateBytes`',
          ...usage.remedies,
        ],
        usage,
      );
    }
  }

  /** Forgets stage `stage` (it ended or was cleared). */
  release(stage: string): void {
    this.total -= this.byStage.get(stage) ?? 0;
    this.byStage.delete(stage);
  }

  private error(stage: string, what: string, remedies: readonly string[], usage: StateUsage): SluiceError {
    return new SluiceError(
      ErrorCode.STATE_LIMIT,
      `${what}. Stopped before the process runs out of memory; to go on: ${remedies.join(', or ')}`,
      { stage, keys: usage.keys, bytes: usage.bytes, maxStateBytes: this.maxStateBytes },
    );
  }
}

const BUDGET: unique symbol = Symbol('sluice.stateBudget');

/**
 * The budget of the run `ctx` belongs to: the one the runtime made from `RunOptions.maxStateBytes`,
 * or (a context made without it, as in a test harness) one with the default limit.
 */
export function stateBudgetOf(ctx: Pick<StageContext, 'runScoped'>, maxStateBytes?: number): StateBudget {
  return ctx.runScoped(BUDGET, () => new StateBudget(maxStateBytes));
}
