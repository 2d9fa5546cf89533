/**
 * The window's per-record aggregate work as functions generated once per operator: preparing
 * every aggregate's input of a record, adding the prepared inputs to a window's accumulators, and
 * making fresh accumulators. Generated (`new Function`) so that each aggregate has its own call
 * site: one loop over `aggs[j].prepare(getters[j](r))` is one call site for every aggregate kind
 * (count, sum, min…), polymorphic and never inlined; here `a0.prepare(g0(r))` and
 * `a1.prepare(g1(r))` each see one target. No user text is embedded: the code names only
 * parameters `a0…`, `g0…`, and the aggregates and getters are passed in as values.
 */
import { type Aggregate, SKIP } from '../aggregate/aggregate.ts';

/**
 * Writes each aggregate's prepared input of `r` to `scratch[j]`. Throws what a `prepare` throws
 * (the record is then a dead letter; `scratch` holds garbage, which nothing reads).
 */
export type PrepareAll = (r: unknown, scratch: unknown[]) => void;

/** Adds the prepared inputs in `scratch` to `accs` (skipping {@link SKIP}) at event time `ts`. */
export type AddAll = (accs: unknown[], scratch: readonly unknown[], ts: number) => void;

/** A fresh accumulator per aggregate, as one array literal. */
export type NewAccs = () => unknown[];

const params = (n: number, p: string): string[] => Array.from({ length: n }, (_, j) => `${p}${j}`);

/** The {@link PrepareAll} of `aggs` reading their inputs with `getters` (same order and length). */
export function prepareAll(
  aggs: readonly Aggregate[],
  getters: readonly ((r: unknown) => unknown)[],
): PrepareAll {
  const n = aggs.length;
  const body = params(n, '').map((_, j) => `s[${j}] = a${j}.prepare(g${j}(r));`);
  const make = new Function(
    ...params(n, 'a'),
    ...params(n, 'g'),
    `return function prepareAll(r, s) {\n${body.join('\n')}\n};`,
  );
  return make(...aggs, ...getters) as PrepareAll;
}

/** The {@link AddAll} of `aggs`. */
export function addAll(aggs: readonly Aggregate[]): AddAll {
  const n = aggs.length;
  const body = params(n, '').map(
    (_, j) => `v = s[${j}];\nif (v !== SKIP) accs[${j}] = a${j}.add(accs[${j}], v, ts);`,
  );
  const make = new Function(
    'SKIP',
    ...params(n, 'a'),
    `return function addAll(accs, s, ts) {\nlet v;\n${body.join('\n')}\n};`,
  );
  return make(SKIP, ...aggs) as AddAll;
}

/** The {@link NewAccs} of `aggs`. */
export function newAccs(aggs: readonly Aggregate[]): NewAccs {
  const n = aggs.length;
  const items = params(n, '').map((_, j) => `a${j}.create()`);
  const make = new Function(
    ...params(n, 'a'),
    `return function newAccs() { return [${items.join(', ')}]; };`,
  );
  return make(...aggs) as NewAccs;
}
