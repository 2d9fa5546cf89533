/**
 * Rate limiting: {@link throttle} lets at most `rate` records per second through, with a
 * token bucket (`bucket`, bursts allowed) or strict pacing (`pace`, evenly spaced).
 */

import { ErrorCode, SluiceError } from '../core/errors.ts';
import { batchOf } from '../core/message.ts';
import type { Operator, StageContext } from '../core/stage.ts';

/** Options of {@link throttle}. */
export interface ThrottleOptions {
  /** Records per second (> 0). */
  rate: number;
  /**
   * `bucket` mode: records that may pass at once after an idle time (the bucket size, ≥ 1).
   * Default: one second's worth, `max(1, rate)`. Ignored in `pace` mode.
   */
  burst?: number;
  /**
   * `bucket` (default): a token bucket — after idling, up to `burst` records pass at once, then
   * `rate` per second. `pace`: evenly spaced, one record every `1/rate` seconds and no burst
   * (at high rates, one millisecond's worth passes together: the clock's resolution).
   */
  mode?: 'bucket' | 'pace';
}

/**
 * Delays records so that at most `rate` per second pass, splitting a batch where needed. Waits
 * on the run's clock with the run's signal, so it is cancellable and testable with a manual
 * clock. Waiting here is backpressure: the input channel fills and upstream slows down.
 *
 * @example
 * stream.via(throttle({ rate: 100, burst: 20 })).to(apiSink);      // 20 at once, then 100/s
 * stream.via(throttle({ rate: 5, mode: 'pace' })).to(apiSink);      // one every 200 ms
 */
export function throttle<T>(options: ThrottleOptions): Operator<T, T> {
  const { rate } = options;
  const mode = options.mode ?? 'bucket';
  if (!(Number.isFinite(rate) && rate > 0)) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `throttle rate must be a number of records per second > 0, got ${rate}`,
    );
  }
  if (mode !== 'bucket' && mode !== 'pace') {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `throttle mode must be \`bucket\` or \`pace\`, got \`${String(mode)}\``,
    );
  }
  const burst =
    mode === 'pace' ? Math.max(1, Math.floor(rate / 1000)) : (options.burst ?? Math.max(1, Math.floor(rate)));
  if (!Number.isInteger(burst) || burst < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `throttle burst must be a whole number ≥ 1, got ${burst}`);
  }
  // Credit in thousandths of a record: each clock millisecond adds `rate`, a record costs
  // 1000. With whole-number rates and clock steps this stays exact (no float drift).
  const COST = 1000;
  const maxCredit = burst * COST;
  let credit = maxCredit;
  let last = 0;
  let ctx: StageContext;

  const refill = () => {
    const now = ctx.clock.now();
    if (now > last) {
      credit = Math.min(maxCredit, credit + (now - last) * rate);
      last = now;
    }
  };

  return {
    open(c) {
      ctx = c;
      last = c.clock.now();
    },
    async process(input, out) {
      const { records, meta } = input;
      const n = records.length;
      let i = 0;
      while (i < n) {
        refill();
        const take = Math.min(n - i, Math.floor(credit / COST));
        if (take === 0) {
          await ctx.clock.sleep(Math.ceil((COST - credit) / rate), ctx.signal);
          continue;
        }
        credit -= take * COST;
        // A batch that passes whole is forwarded as is: batches are immutable once emitted.
        if (take === n) await out.emit(input);
        else await out.emit(batchOf(records.slice(i, i + take), meta?.slice(i, i + take)));
        i += take;
      }
    },
  };
}
