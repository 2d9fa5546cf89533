/**
 * The runtime budget of one CEL evaluation. The library cannot be interrupted, so Sluice
 * meters it from the inside: after an expression is type-checked, the nodes of the library's
 * checked tree that do work (function calls, `+`, list and map literals, comprehensions and
 * each comprehension step) are wrapped to count **steps** (calls and comprehension
 * iterations) and **size** (characters of the strings and elements of the lists and maps they
 * produce). When a count passes its limit the evaluation throws at once; the caller turns it
 * into a `SLUICE_RECORD` error, so the record is dead-lettered and the run goes on.
 *
 * Only the library's evaluator is metered: Sluice's fast path handles no function that can
 * grow a value, so its cost is already linear in the expression and the record.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** The two budgets, by the name of their limit in `limits:`. */
export type BudgetName = 'maxEvalSteps' | 'maxEvalSize';

/** Thrown inside the library when a budget runs out (the sticky `exceeded` says which). */
class BudgetExceeded extends Error {}

// One instance, thrown again and again: after the budget ran out, a quantifier over a long list
// fails each remaining step, and a fresh Error (with its stack trace) per step would cost seconds.
const STOP = new BudgetExceeded('the evaluation budget ran out');

/** Counts one evaluation at a time; {@link Meter.reset} before each. */
export class Meter {
  steps = 0;
  size = 0;
  /** The budget that ran out in this evaluation, and the node (offset) that ran it out. */
  exceeded: { readonly budget: BudgetName; readonly offset: number } | undefined;

  readonly maxSteps: number;
  readonly maxSize: number;

  constructor(maxSteps: number, maxSize: number) {
    this.maxSteps = maxSteps;
    this.maxSize = maxSize;
  }

  reset(): void {
    this.steps = 0;
    this.size = 0;
    this.exceeded = undefined;
  }

  step(offset: number): void {
    if (this.over(offset)) throw STOP;
  }

  /** Counts a step; true when a budget has run out (now or before). */
  over(offset: number): boolean {
    if (++this.steps > this.maxSteps) this.exceeded ??= { budget: 'maxEvalSteps', offset };
    return this.exceeded !== undefined;
  }

  charge(value: unknown, offset: number): void {
    this.size += sizeOf(value);
    if (this.size > this.maxSize) this.fail('maxEvalSize', offset);
  }

  private fail(budget: BudgetName, offset: number): never {
    // Sticky: a quantifier (`exists`, `all`) catches errors of its steps and goes on, so its
    // next step ends the loop and the caller checks `exceeded` after the evaluation returns.
    this.exceeded ??= { budget, offset };
    throw STOP;
  }
}

/** Characters of a string, bytes of bytes, elements of a list (plus its strings' characters), entries of a map. */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null) return 1;
  if (Array.isArray(value)) {
    let n = value.length;
    for (let i = 0; i < value.length; i++) {
      const e = value[i];
      if (typeof e === 'string') n += e.length;
    }
    return n;
  }
  if (value instanceof Uint8Array) return value.length;
  if (value instanceof Map || value instanceof Set) return value.size;
  return 1;
}

type EvaluateFn = (ev: unknown, ast: ASTNode, ctx: unknown) => unknown;

/** The library's tree node, with the parts of it this module reads (not in its typings). */
interface LibNode {
  readonly op: string;
  readonly args: unknown;
  readonly start: number;
  readonly meta: {
    readonly alternate?: LibNode;
    readonly macro?: { readonly args?: readonly LibNode[] };
    readonly evaluate: EvaluateFn;
  };
  evaluate: EvaluateFn;
}

interface ComprehensionArgs {
  readonly iterable: LibNode;
  readonly init: LibNode;
  readonly step: LibNode;
  /** Quantifiers: the loop goes on while it holds for the accumulator. */
  readonly condition?: (accu: unknown) => boolean;
  /** False for quantifiers (`all`, `exists`), which catch the errors of their steps. */
  readonly errorsAreFatal?: boolean;
}

function isNode(v: unknown): v is LibNode {
  return typeof v === 'object' && v !== null && typeof (v as LibNode).op === 'string';
}

/** The child nodes of `node` in the checked tree (macro expansions included). */
function children(node: LibNode): LibNode[] {
  const meta = node.meta;
  if (meta.alternate !== undefined) return [meta.alternate];
  if (meta.macro !== undefined) return (meta.macro.args ?? []).filter(isNode);
  const a = node.args;
  switch (node.op) {
    case 'comprehension': {
      const c = a as ComprehensionArgs;
      return [c.iterable, c.init, c.step];
    }
    case 'call':
      return ((a as unknown[])[1] as unknown[]).filter(isNode);
    case 'rcall': {
      const [, receiver, args] = a as [string, LibNode, LibNode[]];
      return [receiver, ...args];
    }
    case 'map':
      return (a as unknown[][]).flat().filter(isNode);
    default:
      if (isNode(a)) return [a];
      return Array.isArray(a) ? a.filter(isNode) : [];
  }
}

/** How the node itself evaluates (what `ASTNode.evaluate` would install on its first call). */
function ownEvaluate(node: LibNode): EvaluateFn {
  const meta = node.meta;
  const alt = meta.alternate;
  if (alt !== undefined) return (ev, _ast, ctx) => alt.evaluate(ev, alt as unknown as ASTNode, ctx);
  const macro = meta.macro as unknown as LibNode | undefined;
  if (macro !== undefined) return (ev, _ast, ctx) => macro.evaluate(ev, macro as unknown as ASTNode, ctx);
  return meta.evaluate;
}

const PRODUCES = new Set(['call', 'rcall', '+', 'list', 'map', 'comprehension']);

/**
 * Wraps the working nodes of a type-checked tree so that each evaluation is metered by
 * `meter`. Call once per compiled expression, after `check()` (which picks the nodes'
 * evaluators), and {@link Meter.reset} before every evaluation.
 */
export function instrument(root: ASTNode, meter: Meter): void {
  const seen = new Set<LibNode>();
  const visit = (node: LibNode): void => {
    if (seen.has(node)) return;
    seen.add(node);
    for (const c of children(node)) visit(c);
    const offset = node.start;
    if (node.op === 'comprehension') {
      const args = node.args as ComprehensionArgs;
      const step = args.step;
      const inner = ownEvaluate(step);
      // A quantifier swallows errors of its steps and would go on through the whole list, so
      // once the budget is gone its step yields the accumulator that ends the loop instead.
      const condition = args.errorsAreFatal === true ? undefined : args.condition;
      const endLoop = condition === undefined ? undefined : !condition(true);
      step.evaluate = function (ev, ast, ctx) {
        if (meter.over(offset)) {
          if (endLoop !== undefined) return endLoop;
          throw STOP;
        }
        return inner.call(this, ev, ast, ctx);
      };
    }
    // A macro call (`list.map(x, …)`, `has(…)`) is metered through the nodes it expands to.
    if (!PRODUCES.has(node.op) || node.meta.alternate !== undefined || node.meta.macro !== undefined) return;
    const inner = ownEvaluate(node);
    const counts = node.op === 'call' || node.op === 'rcall';
    node.evaluate = function (ev, ast, ctx) {
      if (counts) meter.step(offset);
      const v = inner.call(this, ev, ast, ctx);
      meter.charge(v, offset);
      return v;
    };
  };
  visit(root as unknown as LibNode);
}

/** True when `err` is the budget's own stop signal (the meter's `exceeded` says which budget). */
export function isBudgetStop(err: unknown): boolean {
  return err instanceof BudgetExceeded;
}
