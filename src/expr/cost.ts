/**
 * The compile-time cost estimate of a CEL expression: an upper bound on the **size** of the
 * value each sub-expression produces (characters of a string, elements of a list or map, plus
 * the characters of a list's strings) and on the **steps** it takes (function calls and
 * comprehension iterations), with every value read from the record counted as size 1.
 *
 * The estimate is therefore how much the expression multiplies its input by itself: the work an
 * expression over literals always does (`"…".split("").map(x, "…").join("")`), and the factor
 * by which it grows a record's values. It follows growth through `split` (a list as long as the
 * string), `join` and `replace` (list × separator), `+`, list and map literals, comprehensions
 * (iterations × body, `map` results as long as their input times the body's size) and nested
 * comprehensions (whose bodies run once per outer element). Growth with the record's own size
 * is bounded at run time by the evaluation budget (`budget.ts`) and by `maxComprehensionNesting`.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import type { ExprLimits, LimitViolation } from './limits.ts';
import { isBind, isComprehension } from './limits.ts';

/** Upper bounds for one sub-expression: the size of its value and the steps to compute it. */
interface Estimate {
  readonly size: number;
  readonly steps: number;
}

const ONE: Estimate = { size: 1, steps: 0 };

function sum(list: readonly Estimate[]): Estimate {
  let size = 0;
  let steps = 0;
  for (const e of list) {
    size += e.size;
    steps += e.steps;
  }
  return { size, steps };
}

/** Functions whose result can be as large as their receiver times their last argument. */
const MULTIPLYING = new Set(['join', 'replace']);

/**
 * Estimates `root` and returns the innermost sub-expression whose estimate passes
 * `maxEvalSize` or `maxEvalSteps` (`source` is the expression, for the excerpt), or undefined when the whole expression fits.
 */
export function checkCost(source: string, root: ASTNode, limits: ExprLimits): LimitViolation | undefined {
  let violation: LimitViolation | undefined;
  const verdict = (e: Estimate, node: ASTNode): Estimate => {
    if (violation === undefined) {
      const text = source.slice(node.start, node.end);
      // Head and tail: the tail names the call (`….map(x, …)`), the head where it starts.
      const short = `\`${text.length > 64 ? `${text.slice(0, 24)}…${text.slice(-36)}` : text}\``;
      if (e.size > limits.maxEvalSize)
        violation = {
          reason: `${short} can build a value of about ${round(e.size)} characters/elements from each input value, more than the evaluation budget of ${limits.maxEvalSize} (limit maxEvalSize)`,
          offset: node.start,
        };
      else if (e.steps > limits.maxEvalSteps)
        violation = {
          reason: `${short} can take about ${round(e.steps)} steps per input value, more than the evaluation budget of ${limits.maxEvalSteps} (limit maxEvalSteps)`,
          offset: node.start,
        };
    }
    return e;
  };
  const visit = (node: ASTNode, vars: ReadonlyMap<string, Estimate>): Estimate => {
    if (violation !== undefined) return ONE;
    switch (node.op) {
      case 'value': {
        const v = node.args;
        // A number or bool adds nothing to a list's size beyond its element (as at run time).
        const size = typeof v === 'string' || v instanceof Uint8Array ? v.length : 0;
        return { size, steps: 0 };
      }
      case 'id':
        return vars.get(node.args) ?? ONE;
      case '.':
      case '.?':
        return visit(node.args[0], vars);
      case 'list': {
        const s = sum(node.args.map((a) => visit(a, vars)));
        return verdict({ size: s.size + node.args.length, steps: s.steps }, node);
      }
      case 'map': {
        const s = sum(node.args.flatMap(([k, v]) => [visit(k, vars), visit(v, vars)]));
        return verdict({ size: s.size + node.args.length, steps: s.steps }, node);
      }
      case 'call': {
        const s = sum(node.args[1].map((a) => visit(a, vars)));
        return verdict({ size: s.size, steps: s.steps + 1 }, node);
      }
      case 'rcall':
        return verdict(rcall(node, vars), node);
      case '!_':
      case '-_':
        return visit(node.args, vars);
      case '+': {
        const [a, b] = node.args.map((x) => visit(x, vars)) as [Estimate, Estimate];
        return verdict({ size: a.size + b.size, steps: a.steps + b.steps }, node);
      }
      case '?:': {
        const [c, a, b] = node.args.map((x) => visit(x, vars)) as [Estimate, Estimate, Estimate];
        return { size: Math.max(a.size, b.size), steps: c.steps + a.steps + b.steps };
      }
      case '[]':
      case '[?]': {
        const [a, b] = node.args.map((x) => visit(x, vars)) as [Estimate, Estimate];
        return { size: a.size, steps: a.steps + b.steps };
      }
      default: {
        // Comparisons, arithmetic, `in`, `&&`, `||`: a small value.
        const s = sum((node.args as readonly ASTNode[]).map((x) => visit(x, vars)));
        return { size: 1, steps: s.steps };
      }
    }
  };
  const rcall = (node: ASTNode & { op: 'rcall' }, vars: ReadonlyMap<string, Estimate>): Estimate => {
    const [name, receiver, args] = node.args;
    if (isBind(node)) {
      const bound = visit(args[1] as ASTNode, vars);
      const inner = new Map(vars).set((args[0] as ASTNode).args as string, { size: bound.size, steps: 0 });
      const body = visit(args[2] as ASTNode, inner);
      return { size: body.size, steps: bound.steps + body.steps };
    }
    const r = visit(receiver, vars);
    if (isComprehension(node)) {
      // Iterations: at most the list's size; each element: at most the whole list.
      const inner = new Map(vars).set((args[0] as ASTNode).args as string, { size: r.size, steps: 0 });
      const parts = args.slice(1).map((a) => visit(a, inner));
      const steps = r.steps + r.size * (sum(parts).steps + 1);
      if (name === 'map') return { size: r.size * (1 + (parts[parts.length - 1] as Estimate).size), steps };
      if (name === 'filter') return { size: r.size, steps };
      return { size: 1, steps };
    }
    const a = args.map((x) => visit(x, vars));
    const s = sum([r, ...a]);
    const steps = s.steps + 1;
    if (name === 'split') return { size: 2 * r.size + 1, steps };
    if (MULTIPLYING.has(name)) {
      const last = a[a.length - 1]?.size ?? 0;
      return { size: r.size * (1 + last), steps };
    }
    return { size: s.size, steps };
  };
  visit(root, new Map());
  return violation;
}

function round(n: number): string {
  if (!Number.isFinite(n) || n >= 1e15) return 'unbounded';
  return n >= 1e6 ? `${(n / 1e6).toPrecision(3)} million` : String(Math.round(n));
}
