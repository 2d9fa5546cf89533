/**
 * Mergeable, serialisable aggregates for windows: count, exact sum, min, max, mean, EMA,
 * rolling mean, distinct count (HyperLogLog) and percentiles (DDSketch, HDR histogram), and
 * the parser of their call expressions in pipeline files.
 */
export { type Aggregate, aggregateAll, SKIP } from './aggregate.ts';
export { count, ema, max, mean, min, sum } from './basic.ts';
export { type Decimal, parseDecimal } from './decimal.ts';
export { distinct } from './hll.ts';
export { AGGREGATE_FUNCTIONS, compileAggregate, parseAggregateCall } from './parse.ts';
export { hdrPercentile, percentile } from './percentile.ts';
export { RollingWindow, rollingMean } from './rolling.ts';
