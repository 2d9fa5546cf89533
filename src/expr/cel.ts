/**
 * CEL (Common Expression Language) expressions over records, on top of
 * `@marcbachmann/cel-js`: parsed and type-checked by the library, bounded by
 * {@link ExprLimits}, compiled once, and evaluated in the batch loop.
 *
 * Variables: each top-level field of the record (`risk > 50`), the whole record as `record`,
 * and the record's metadata as `meta` (`meta.source`, `meta.key`, `meta.timestamp`,
 * `meta.partition`, `meta.offset`, `meta.line`, `meta.headers`, `meta.position`). Only own
 * properties of the record are visible: `constructor`, `__proto__` or `toString` are never
 * looked up through the prototype chain (the library does the same for nested fields).
 *
 * Numbers: JSON numbers are JavaScript numbers, which CEL calls `double`; integer literals
 * (`50`) are `int`. Comparisons across the two are standard CEL. Sluice adds arithmetic across
 * them (`qty * 2`, result `double`) and `%` on doubles (`id % 2 == 0`), because a JSON record
 * has only one number type; everything else is standard CEL.
 *
 * Decimals: a {@link Decimal} field (a CSV `decimal` column, a JSON `decimals` field, a
 * PostgreSQL `numeric`) is the CEL type `decimal`. `+`, `-`, `*` and comparisons with another
 * decimal, an `int` or a `double` are exact (a double is taken as the shortest text that prints
 * it: `amount > 100.5` compares with 100.5, not its binary neighbour); a sum or difference has
 * the larger scale, a product the sum of the scales. `/` rounds half to even to the larger scale
 * plus 6 digits (`QUOTIENT_SCALE`); `round(amount, 2)` rounds half to even to 2 digits.
 * `decimal("1.10")`, `decimal(5)` make one; `double(amount)` and `string(amount)` leave the type.
 * Division by zero fails the record (dead letter).
 */
import { createRequire } from 'node:module';
import type { ASTNode, Environment, ParseResult } from '@marcbachmann/cel-js';
import { Decimal } from '../core/decimal.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { instrument, Meter } from './budget.ts';
import { checkCost } from './cost.ts';
import { compileFast, DEOPT, type FastFn } from './fast.ts';
import { checkLimits, DEFAULT_EXPR_LIMITS, type ExprLimits, isBind, isComprehension } from './limits.ts';

/** What an expression must produce, checked at compile time against its inferred type. */
export type ExprResult = 'bool' | 'any';

/** Options of {@link compileExpression}. */
export interface CompileOptions {
  /** Required result type: `bool` for filters and route conditions. Default `any`. */
  readonly result?: ExprResult;
  /** Limits to enforce; missing fields take {@link DEFAULT_EXPR_LIMITS}. */
  readonly limits?: Partial<ExprLimits>;
  /** What the expression is, for messages: `filter`, ``map field `total` ``. */
  readonly what?: string;
  /** Set false to always use the library's evaluator (benchmarks, differential tests). Default true. */
  readonly fastPath?: boolean;
}

/** An expression compiled once; `evaluate` runs it on one record. */
export interface CompiledExpression {
  /** The expression as written. */
  readonly source: string;
  /** True when the expression reads `meta`. */
  readonly usesMeta: boolean;
  /**
   * The top-level record fields it reads (its free variables that are fields), or undefined when
   * it reads the whole record (`record`): what a decoder must keep of each record for it.
   */
  readonly fields: readonly string[] | undefined;
  /** True when Sluice's closure compiler handles the expression (else the library evaluates it). */
  readonly fast: boolean;
  /**
   * Evaluates the expression on `record` (with `meta` as its metadata). Synchronous, never
   * awaits. Throws a `SLUICE_RECORD` {@link SluiceError} when this record makes it fail
   * (missing field, wrong type, division by zero…): dead-letter the record and go on.
   */
  evaluate(record: unknown, meta?: RecordMeta): unknown;
}

/** Variable names Sluice binds itself; a record field with one of these names is reached as `record.<name>`. */
export const RESERVED_VARIABLES: readonly string[] = ['record', 'meta'];

/** Mixed int/double arithmetic and double remainder (see the module comment). */
function numeric(op: string): (a: unknown, b: unknown) => number {
  switch (op) {
    case '+':
      return (a, b) => Number(a) + Number(b);
    case '-':
      return (a, b) => Number(a) - Number(b);
    case '*':
      return (a, b) => Number(a) * Number(b);
    case '/':
      return (a, b) => Number(a) / Number(b);
    default:
      return (a, b) => Number(a) % Number(b);
  }
}

/** A CEL operand of a decimal operator (decimal, int or double) as a {@link Decimal}. */
function dec(v: unknown): Decimal {
  if (v instanceof Decimal) return v;
  if (typeof v === 'bigint') return new Decimal(v, 0);
  const d = Decimal.tryFrom(v);
  if (d === undefined) throw new RangeError(`${String(v)} is not a finite number, so not a decimal`);
  return d;
}

/** Registers the `decimal` type, its operators and functions (see the module comment). */
function registerDecimal(env: Environment): void {
  env.registerType('decimal', Decimal);
  const arithmetic: Record<string, (a: Decimal, b: Decimal) => Decimal> = {
    '+': (a, b) => a.add(b),
    '-': (a, b) => a.sub(b),
    '*': (a, b) => a.mul(b),
    '/': (a, b) => a.div(b),
  };
  const order: Record<string, (c: number) => boolean> = {
    '<': (c) => c < 0,
    '<=': (c) => c <= 0,
    '>': (c) => c > 0,
    '>=': (c) => c >= 0,
  };
  const pairs = [
    ['decimal', 'decimal'],
    ['decimal', 'int'],
    ['int', 'decimal'],
    ['decimal', 'double'],
    ['double', 'decimal'],
  ] as const;
  for (const [l, r] of pairs) {
    for (const [op, f] of Object.entries(arithmetic))
      env.registerOperator(`${l} ${op} ${r}: decimal`, (a: unknown, b: unknown) => f(dec(a), dec(b)));
    for (const [op, f] of Object.entries(order))
      env.registerOperator(`${l} ${op} ${r}`, (a: unknown, b: unknown) => f(dec(a).compare(dec(b))));
    // `==` registers its mirror (`int == decimal`) and `!=` itself.
    if (l === 'decimal')
      env.registerOperator(`${l} == ${r}`, (a: unknown, b: unknown) => dec(a).equals(dec(b)));
  }
  env.registerOperator('-decimal: decimal', (a: unknown) => dec(a).neg());
  for (const t of ['decimal', 'int', 'double', 'string'])
    env.registerFunction(`decimal(${t}): decimal`, (v: unknown) => dec(v), {
      description: 'An exact decimal from a number or a decimal string ("12.50").',
    });
  env.registerFunction('round(decimal, int): decimal', (v: unknown, s: unknown) => dec(v).round(Number(s)), {
    description: 'The decimal rounded half to even to the given number of fraction digits.',
  });
  env.registerFunction('double(decimal): double', (v: unknown) => dec(v).toNumber());
  env.registerFunction('string(decimal): string', (v: unknown) => dec(v).toString());
}

// The CEL library is loaded on the first expression, not with this module: every `sluice`
// command loads the component registry, and the library adds ~9 MB of RSS to a job that has no
// expression. It is ESM without top-level await, so `require` loads it synchronously.
const require = createRequire(import.meta.url);

let sharedEnv: Environment | undefined;

/** The one CEL environment of Sluice (creating one is expensive; parsing with it is not). */
export function celEnvironment(): Environment {
  if (sharedEnv) return sharedEnv;
  const { Environment } = require('@marcbachmann/cel-js') as typeof import('@marcbachmann/cel-js');
  const env = new Environment({
    unlistedVariablesAreDyn: true,
    homogeneousAggregateLiterals: false,
    limits: {
      // The library's own parse-time limits stop absurd input early; ours give the messages.
      maxAstNodes: 4 * DEFAULT_EXPR_LIMITS.maxNodes,
      maxDepth: 4 * DEFAULT_EXPR_LIMITS.maxDepth,
      maxListElements: 4 * DEFAULT_EXPR_LIMITS.maxLiteralElements,
      maxMapEntries: 4 * DEFAULT_EXPR_LIMITS.maxLiteralElements,
      maxCallArguments: 16,
    },
  })
    .registerVariable('record', 'dyn', { description: 'The whole record.' })
    .registerVariable('meta', 'map', {
      description: 'The record metadata: source, key, timestamp, partition, offset…',
    });
  for (const op of ['+', '-', '*', '/']) {
    env.registerOperator(`double ${op} int`, numeric(op));
    env.registerOperator(`int ${op} double`, numeric(op));
  }
  for (const sig of ['double % double', 'double % int', 'int % double'])
    env.registerOperator(sig, numeric('%'));
  registerDecimal(env);
  sharedEnv = env;
  return env;
}

/** 1-based line and column of `offset` in `source`. */
export function lineColumn(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

function compileError(
  source: string,
  what: string,
  offset: number,
  reason: string,
  cause?: unknown,
): SluiceError {
  const { line, column } = lineColumn(source, offset);
  const where = line > 1 ? `line ${line}, column ${column}` : `column ${column}`;
  const snippet = source.length > 80 ? `${source.slice(0, 77)}...` : source;
  return new SluiceError(
    ErrorCode.CONFIG,
    `${what} expression \`${snippet}\` is invalid at ${where}: ${reason}`,
    { component: 'cel', expression: source, position: offset, exprLine: line, exprColumn: column, reason },
    cause === undefined ? undefined : { cause },
  );
}

/** The first line of a library error message (the rest is a source excerpt we render ourselves). */
function summary(err: unknown): string {
  const e = err as { summary?: unknown };
  if (typeof e?.summary === 'string' && e.summary !== '') return e.summary;
  return errorMessage(err).split('\n')[0] ?? '';
}

function offsetOf(err: unknown): number {
  const range = (err as { range?: { start?: unknown } })?.range;
  return typeof range?.start === 'number' ? range.start : 0;
}

/** Top-level identifiers the expression reads (not comprehension or `cel.bind` variables). */
function freeVariables(root: ASTNode): Set<string> {
  const found = new Set<string>();
  const visit = (node: ASTNode, bound: ReadonlySet<string>): void => {
    switch (node.op) {
      case 'value':
        return;
      case 'id':
        if (!bound.has(node.args)) found.add(node.args);
        return;
      case '.':
      case '.?': {
        visit(node.args[0], bound);
        return;
      }
      case 'list':
        for (const a of node.args) visit(a, bound);
        return;
      case 'map':
        for (const [k, v] of node.args) {
          visit(k, bound);
          visit(v, bound);
        }
        return;
      case 'call':
        for (const a of node.args[1]) visit(a, bound);
        return;
      case 'rcall': {
        const [, receiver, args] = node.args;
        if (isBind(node)) {
          const name = (args[0] as ASTNode).args as string;
          visit(args[1] as ASTNode, bound);
          visit(args[2] as ASTNode, new Set([...bound, name]));
          return;
        }
        visit(receiver, bound);
        if (isComprehension(node)) {
          const inner = new Set([...bound, (args[0] as ASTNode).args as string]);
          for (const a of args.slice(1)) visit(a, inner);
          return;
        }
        for (const a of args) visit(a, bound);
        return;
      }
      case '!_':
      case '-_': {
        visit(node.args, bound);
        return;
      }
      default:
        for (const a of node.args as readonly ASTNode[]) visit(a, bound);
    }
  };
  visit(root, new Set());
  return found;
}

/**
 * The `meta` variable for a record: source, key, timestamp, headers, the position object and
 * the position's fields (`partition`, `offset`, `line`…) at the top level. Built only for
 * expressions that read `meta`.
 */
export function metaView(meta: RecordMeta | undefined): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  if (meta === undefined) return view;
  if (meta.position !== undefined) {
    for (const k of Object.keys(meta.position)) view[k] = meta.position[k];
    view.position = meta.position;
  }
  view.source = meta.source;
  if (meta.key !== undefined) view.key = meta.key;
  if (meta.timestamp !== undefined) view.timestamp = meta.timestamp;
  if (meta.headers !== undefined) view.headers = meta.headers;
  return view;
}

const hasOwn = Object.hasOwn;

/**
 * Compiles `source` once: parses and type-checks it with the library, enforces the limits and
 * the result type, and prepares the fast path. Throws a `SLUICE_CONFIG` {@link SluiceError}
 * naming the expression, the position (line and column, also `context.position` as a 0-based
 * offset) and the reason.
 *
 * @example
 * const e = compileExpression('risk > 50 && country in ["US", "DE"]', { result: 'bool' });
 * e.evaluate({ risk: 70, country: 'US' }); // true
 */
export function compileExpression(source: string, options: CompileOptions = {}): CompiledExpression {
  const limits: ExprLimits = { ...DEFAULT_EXPR_LIMITS, ...options.limits };
  const what = options.what ?? 'the';
  if (typeof source !== 'string' || source.trim() === '')
    throw compileError(String(source ?? ''), what, 0, 'the expression is empty');
  if (source.length > limits.maxLength) {
    throw compileError(
      source,
      what,
      limits.maxLength,
      `the expression is longer than ${limits.maxLength} characters (limit maxLength)`,
    );
  }
  const env = celEnvironment();
  let parsed: ParseResult;
  try {
    parsed = env.parse(source);
  } catch (err) {
    throw compileError(source, what, offsetOf(err), summary(err), err);
  }
  const violation = checkLimits(parsed.ast, limits);
  if (violation) throw compileError(source, what, violation.offset, violation.reason);
  const free = freeVariables(parsed.ast);
  for (const name of free) {
    if (name === '__proto__' || name === 'prototype')
      throw compileError(source, what, 0, `\`${name}\` is not a valid variable name`);
  }
  const checked = parsed.check();
  if (!checked.valid)
    throw compileError(source, what, offsetOf(checked.error), summary(checked.error), checked.error);
  const tooCostly = checkCost(source, parsed.ast, limits);
  if (tooCostly) throw compileError(source, what, tooCostly.offset, tooCostly.reason);
  const meter = new Meter(limits.maxEvalSteps, limits.maxEvalSize);
  instrument(parsed.ast, meter);
  if (options.result === 'bool' && checked.type !== 'bool' && checked.type !== 'dyn') {
    throw compileError(
      source,
      what,
      0,
      `the expression must be a bool (true or false), but it is a \`${checked.type}\``,
    );
  }

  // Record fields become variables, except names CEL already defines (`int`, `type`…).
  const fields = [...free].filter(
    (n) => !RESERVED_VARIABLES.includes(n) && !env.hasVariable(n) && n !== 'cel',
  );
  const usesMeta = free.has('meta');
  const usesRecord = free.has('record');
  const ctx: Record<string, unknown> = Object.create(null);
  const slow = (record: unknown, meta: unknown, recordMeta: RecordMeta | undefined): unknown => {
    const obj =
      typeof record === 'object' && record !== null ? (record as Record<string, unknown>) : undefined;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i] as string;
      ctx[name] = obj !== undefined && hasOwn(obj, name) ? obj[name] : undefined;
    }
    if (usesRecord) ctx.record = record;
    if (usesMeta) ctx.meta = meta;
    meter.reset();
    try {
      const v = parsed(ctx);
      // A quantifier may have swallowed the budget's stop and still produced a result.
      if (meter.exceeded !== undefined) throw budgetError(recordMeta);
      return v;
    } catch (err) {
      if (meter.exceeded !== undefined) throw budgetError(recordMeta);
      throw err;
    } finally {
      // Do not keep the last record alive through the reused context.
      if (usesRecord) ctx.record = undefined;
    }
  };
  const budgetError = (recordMeta: RecordMeta | undefined): SluiceError => {
    const at = recordMeta?.position;
    const { budget, offset } = meter.exceeded as NonNullable<Meter['exceeded']>;
    const { line, column } = lineColumn(source, offset);
    const limit = budget === 'maxEvalSteps' ? limits.maxEvalSteps : limits.maxEvalSize;
    const unit = budget === 'maxEvalSteps' ? 'steps' : 'characters/elements';
    return new SluiceError(
      ErrorCode.RECORD,
      `${what} expression \`${source}\` ran out of its evaluation budget at ${line > 1 ? `line ${line}, ` : ''}column ${column}: the record${at !== undefined ? ` at ${JSON.stringify(at)}` : ''} needs more than ${limit} ${unit} (limit ${budget}); raise \`limits.${budget}\` if such records are expected`,
      {
        component: 'cel',
        expression: source,
        position: offset,
        exprColumn: column,
        reason: budget,
        budget,
        limit,
        ...(at !== undefined ? { recordPosition: at } : {}),
      },
    );
  };
  const fast: FastFn | undefined =
    options.fastPath === false ? undefined : compileFast(parsed.ast, new Set(fields));
  const runtimeError = (err: unknown): SluiceError => {
    const offset = offsetOf(err);
    const { line, column } = lineColumn(source, offset);
    const code = (err as { code?: unknown })?.code;
    return new SluiceError(
      ErrorCode.RECORD,
      `${what} expression \`${source}\` failed at ${line > 1 ? `line ${line}, ` : ''}column ${column}: ${summary(err)}`,
      {
        component: 'cel',
        expression: source,
        position: offset,
        exprColumn: column,
        ...(typeof code === 'string' ? { reason: code } : {}),
      },
      { cause: err },
    );
  };
  const viaLibrary = (record: unknown, m: unknown, recordMeta: RecordMeta | undefined): unknown => {
    try {
      return slow(record, m, recordMeta);
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      // EvaluationError from the library; anything else thrown while judging this record
      // (a stack overflow on a pathological record) is also this record's failure.
      throw runtimeError(err);
    }
  };
  let evaluate: (record: unknown, meta?: RecordMeta) => unknown;
  if (fast === undefined)
    evaluate = (record, meta) => viaLibrary(record, usesMeta ? metaView(meta) : undefined, meta);
  else if (!usesMeta) {
    evaluate = (record, meta) => {
      const v = fast(record, undefined);
      return v !== DEOPT ? v : viaLibrary(record, undefined, meta);
    };
  } else {
    evaluate = (record, meta) => {
      const m = metaView(meta);
      const v = fast(record, m);
      return v !== DEOPT ? v : viaLibrary(record, m, meta);
    };
  }
  return { source, usesMeta, fields: usesRecord ? undefined : fields, fast: fast !== undefined, evaluate };
}

/** Deepest map result {@link toRecordValue} copies; deeper is a record error, not a stack overflow. */
export const MAX_VALUE_DEPTH = 1000;

/**
 * Turns a CEL result into a plain record value (a record error past {@link MAX_VALUE_DEPTH} levels): `int`/`uint` become numbers when they fit
 * exactly (else stay `bigint`), maps become plain objects, lists arrays; strings, doubles,
 * bools, null, bytes and timestamps are kept.
 */
export function toRecordValue(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'bigint':
      return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
    case 'object': {
      if (value === null || value instanceof Uint8Array || value instanceof Date || value instanceof Decimal)
        return value;
      if (depth >= MAX_VALUE_DEPTH)
        throw new SluiceError(
          ErrorCode.RECORD,
          `a map result nests deeper than ${MAX_VALUE_DEPTH} levels; flatten the value or drop the field`,
          { component: 'cel', reason: 'depth' },
        );
      const d = depth + 1;
      if (Array.isArray(value)) return value.map((v) => toRecordValue(v, d));
      if (value instanceof Map) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of value) {
          const key = String(k);
          if (key !== '__proto__') out[key] = toRecordValue(v, d);
        }
        return out;
      }
      if (value instanceof Set) return [...value].map((v) => toRecordValue(v, d));
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(value))
          if (k !== '__proto__') out[k] = toRecordValue((value as Record<string, unknown>)[k], d);
        return out;
      }
      // UnsignedInt and other library wrappers.
      const prim = (value as { valueOf(): unknown }).valueOf();
      if (typeof prim === 'bigint') return toRecordValue(prim, d);
      return String(value);
    }
    default:
      return value;
  }
}
