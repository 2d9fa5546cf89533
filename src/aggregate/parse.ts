/**
 * The small aggregate call expressions of pipeline files — `count()`, `sum(amount)`,
 * `percentile(risk, 0.99)`, `ema(risk, 5m)` — parsed by a tiny strict parser (config time only),
 * with messages that point at the column and say what to write.
 *
 * Grammar: `name(arg, …)` where an argument is a field (`amount`, `order.total`, or quoted
 * `'unit price'`), a number (`0.99`) or a duration (`5m`, `500ms`).
 */

import { parseDuration } from '../core/duration.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { didYouMean, listChoices } from '../spec/suggest.ts';
import type { Aggregate } from './aggregate.ts';
import { count, ema, max, mean, min, sum } from './basic.ts';
import { distinct } from './hll.ts';
import { hdrPercentile, percentile } from './percentile.ts';
import { rollingMean } from './rolling.ts';

/** One parsed argument. */
export type AggregateArg =
  | { readonly kind: 'field'; readonly path: string }
  | { readonly kind: 'number'; readonly value: number; readonly text: string }
  | { readonly kind: 'duration'; readonly ms: number; readonly text: string };

type ArgKind = AggregateArg['kind'];

interface FunctionDef {
  /** Argument kinds in order; those after `required` are optional. */
  readonly args: readonly ArgKind[];
  readonly names: readonly string[];
  readonly required: number;
  readonly build: (a: readonly AggregateArg[]) => Aggregate;
}

const f = (a: AggregateArg | undefined) => (a?.kind === 'field' ? a.path : undefined) as string;
const n = (a: AggregateArg | undefined) => (a?.kind === 'number' ? a.value : undefined);
const ms = (a: AggregateArg | undefined) => (a?.kind === 'duration' ? a.ms : 0);

/** The aggregate functions a pipeline file can call, with their signatures. */
export const AGGREGATE_FUNCTIONS: Readonly<Record<string, FunctionDef>> = {
  count: { args: ['field'], names: ['field'], required: 0, build: (a) => count(a[0] ? f(a[0]) : undefined) },
  sum: { args: ['field'], names: ['field'], required: 1, build: (a) => sum(f(a[0])) },
  min: { args: ['field'], names: ['field'], required: 1, build: (a) => min(f(a[0])) },
  max: { args: ['field'], names: ['field'], required: 1, build: (a) => max(f(a[0])) },
  mean: { args: ['field'], names: ['field'], required: 1, build: (a) => mean(f(a[0])) },
  ema: {
    args: ['field', 'duration'],
    names: ['field', 'halfLife'],
    required: 2,
    build: (a) => ema(f(a[0]), ms(a[1])),
  },
  distinct: {
    args: ['field', 'number'],
    names: ['field', 'precision'],
    required: 1,
    build: (a) => distinct(f(a[0]), n(a[1])),
  },
  percentile: {
    args: ['field', 'number', 'number'],
    names: ['field', 'quantile', 'relativeAccuracy'],
    required: 2,
    build: (a) => percentile(f(a[0]), n(a[1]) as number, n(a[2])),
  },
  hdrPercentile: {
    args: ['field', 'number', 'number'],
    names: ['field', 'quantile', 'digits'],
    required: 2,
    build: (a) => hdrPercentile(f(a[0]), n(a[1]) as number, n(a[2])),
  },
  rollingMean: {
    args: ['field', 'duration', 'number'],
    names: ['field', 'bucket', 'buckets'],
    required: 3,
    build: (a) => rollingMean(f(a[0]), ms(a[1]), n(a[2]) as number),
  },
};

/** A parsed call: the function name and its arguments. */
export interface AggregateCall {
  readonly fn: string;
  readonly args: readonly AggregateArg[];
}

function signature(name: string, def: FunctionDef): string {
  const parts = def.names.map((p, i) => (i < def.required ? p : `[${p}]`));
  return `${name}(${parts.join(', ')})`;
}

const isIdentStart = (c: string) => /[A-Za-z_$]/.test(c);
const isIdentPart = (c: string) => /[A-Za-z0-9_$]/.test(c);

/**
 * Parses one call expression (syntax only). Throws a `SLUICE_CONFIG` error naming the column.
 *
 * @example
 * parseAggregateCall('percentile(risk, 0.99)');
 * // { fn: 'percentile', args: [{ kind: 'field', path: 'risk' }, { kind: 'number', value: 0.99, text: '0.99' }] }
 */
export function parseAggregateCall(text: string): AggregateCall {
  let i = 0;
  const fail = (msg: string): never => {
    throw new SluiceError(ErrorCode.CONFIG, `\`${text}\` at column ${i + 1}: ${msg}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const ident = (): string => {
    const start = i;
    if (i >= text.length || !isIdentStart(text[i] as string)) fail('expected a name');
    while (i < text.length && isIdentPart(text[i] as string)) i++;
    return text.slice(start, i);
  };
  ws();
  const fn = ident();
  ws();
  if (text[i] !== '(') fail(`expected \`(\` after \`${fn}\`; write a call such as \`${fn}(field)\``);
  i++;
  ws();
  const args: AggregateArg[] = [];
  if (text[i] === ')') i++;
  else {
    for (;;) {
      ws();
      const c = text[i];
      if (c === undefined) fail('expected an argument');
      if (c === "'" || c === '"') {
        const end = text.indexOf(c, i + 1);
        if (end < 0) fail(`unterminated quoted field name; close it with ${c}`);
        const path = text.slice(i + 1, end);
        if (path === '') fail('empty field name');
        args.push({ kind: 'field', path });
        i = end + 1;
      } else if (/[-0-9.]/.test(c as string)) {
        const start = i;
        if (text[i] === '-') i++;
        while (i < text.length && /[0-9.]/.test(text[i] as string)) i++;
        const num = text.slice(start, i);
        const unitStart = i;
        while (i < text.length && /[a-z]/.test(text[i] as string)) i++;
        const unit = text.slice(unitStart, i);
        if (unit !== '') {
          try {
            args.push({ kind: 'duration', ms: parseDuration(num + unit), text: num + unit });
          } catch (err) {
            i = start;
            fail(errorMessage(err));
          }
        } else {
          const value = Number(num);
          if (num === '' || num === '-' || Number.isNaN(value)) {
            i = start;
            fail(`\`${num}\` is not a number`);
          }
          args.push({ kind: 'number', value, text: num });
        }
      } else {
        let path = ident();
        while (text[i] === '.') {
          i++;
          path += `.${ident()}`;
        }
        args.push({ kind: 'field', path });
      }
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ')') {
        i++;
        break;
      }
      fail(text[i] === undefined ? 'expected `)`' : `expected \`,\` or \`)\`, found \`${text[i]}\``);
    }
  }
  ws();
  if (i < text.length) fail(`unexpected \`${text.slice(i)}\` after the call; write one call per aggregate`);
  return { fn, args };
}

/** A compiled aggregate of a pipeline file: output name, the aggregate, and how to read its input. */
export interface CompiledAggregate {
  /** The output field name. */
  readonly name: string;
  readonly aggregate: Aggregate;
  /** The expression as written (for messages). */
  readonly text: string;
}

/**
 * Parses and checks a call against the function table and builds its {@link Aggregate}.
 * Throws a `SLUICE_CONFIG` error for an unknown function (with a suggestion), a wrong number
 * of arguments, an argument of the wrong kind, or a value out of range (e.g. a quantile > 1).
 *
 * @example
 * compileAggregate('sum(amount)').result(…);
 */
export function compileAggregate(text: string): Aggregate {
  const call = parseAggregateCall(text);
  const def = AGGREGATE_FUNCTIONS[call.fn];
  if (def === undefined) {
    const hint = didYouMean(call.fn, Object.keys(AGGREGATE_FUNCTIONS));
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${text}\`: unknown aggregate function \`${call.fn}\`${hint ? `; did you mean \`${hint}\`?` : ''} (known: ${listChoices(Object.keys(AGGREGATE_FUNCTIONS))})`,
    );
  }
  const { args } = call;
  if (args.length < def.required || args.length > def.args.length) {
    const want =
      def.required === def.args.length ? `${def.required}` : `${def.required} to ${def.args.length}`;
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${text}\`: \`${call.fn}\` takes ${want} argument${def.args.length === 1 ? '' : 's'}, got ${args.length}; write \`${signature(call.fn, def)}\``,
    );
  }
  args.forEach((a, k) => {
    const want = def.args[k] as ArgKind;
    if (a.kind !== want) {
      const got = a.kind === 'field' ? `the field \`${a.path}\`` : `the ${a.kind} \`${a.text}\``;
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`${text}\`: argument ${k + 1} (\`${def.names[k]}\`) of \`${call.fn}\` must be a ${want}${want === 'duration' ? ' such as `5m`' : ''}, got ${got}; write \`${signature(call.fn, def)}\``,
      );
    }
  });
  try {
    return def.build(args);
  } catch (err) {
    throw new SluiceError(ErrorCode.CONFIG, `\`${text}\`: ${errorMessage(err)}`, {}, { cause: err });
  }
}
