/**
 * The join operators: {@link streamJoin} (interval or window join of two streams) and
 * {@link tableJoin} (a stream joined with a table materialised from a changelog, in event time).
 * Each takes its two inputs as the edges named `left` and `right` (`Stream.join` and
 * `Stream.joinTable` wire them; a pipeline file's `join` step names them under `inputs:`).
 */
import { JoinOperator } from './base.ts';
import { IntervalJoin } from './interval.ts';
import { type JoinMatch, type JoinOptions, joinPlan } from './options.ts';
import { TemporalTableJoin } from './table.ts';

export { JOIN_INPUTS, JoinOperator, type JoinSide, type JoinSnapshot, type LateJoinRecord } from './base.ts';
export { type BySide, type JoinDuration, type JoinOptions, joinPorts, MESSAGE_KEY } from './options.ts';

/**
 * An interval join (`between`) or window join (`tumbling`) of two streams on a key in event time;
 * see `interval.ts` for when records match and when state is dropped. Results are
 * `{ left, right }` records (field names from `as`); `right` is null for an unmatched left record
 * of a `type: left` join. Throws a `SLUICE_CONFIG` error listing every problem of `options`.
 *
 * @example
 * const join = streamJoin({ key: 'orderId', time: 'ts', between: ['-5m', '1m'], watermark: { maxOutOfOrder: '10s' } });
 */
export function streamJoin(options: JoinOptions): JoinOperator {
  const plan = joinPlan(options, 'stream');
  return new JoinOperator(
    plan,
    'stream',
    (results) => new IntervalJoin(plan.match as JoinMatch, plan.outer, results),
  );
}

/**
 * A stream–table join in event time: the right input is a changelog (last value per key; a null
 * value deletes) kept as a versioned table, and each left record is joined with the row its key
 * had at the record's time; see `table.ts`. Throws a `SLUICE_CONFIG` error listing every problem.
 *
 * @example
 * const join = tableJoin({ key: { left: 'customerId', right: '$key' }, time: { left: 'ts' }, type: 'left' });
 */
export function tableJoin(options: JoinOptions): JoinOperator {
  const plan = joinPlan(options, 'table');
  return new JoinOperator(plan, 'table', (results) => new TemporalTableJoin(plan.outer, results));
}
