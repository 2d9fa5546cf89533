/**
 * Compile-time limits on CEL expressions. No npm CEL library can stop an evaluation that
 * runs too long, so Sluice bounds the cost of an expression before it ever runs: the size and
 * depth of its syntax tree, how many comprehensions (`all`, `exists`, `map`, `filter`,
 * `cel.bind`…) it has and how deeply they nest, the size of literals, and regular expressions
 * (only literal patterns without nested quantifiers, the cause of catastrophic backtracking).
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** Structural limits checked when an expression is compiled. */
export interface ExprLimits {
  /** Longest expression source, in characters. */
  readonly maxLength: number;
  /** Most syntax-tree nodes. */
  readonly maxNodes: number;
  /** Deepest syntax-tree nesting (also bounds the evaluator's recursion). */
  readonly maxDepth: number;
  /** Most comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`, `cel.bind`) in one expression. */
  readonly maxComprehensions: number;
  /**
   * Deepest nesting of comprehensions. The work of an expression grows with the sizes of the
   * lists it iterates raised to this power, so keep it small.
   */
  readonly maxComprehensionNesting: number;
  /** Most elements of a list literal or entries of a map literal. */
  readonly maxLiteralElements: number;
  /** Longest string or bytes literal, in characters. */
  readonly maxStringLiteral: number;
  /**
   * Runtime budget of one evaluation, in steps: function calls plus comprehension iterations.
   * A record that needs more is dead-lettered. The compile-time estimate (each record value
   * counted as size 1) must fit it too.
   */
  readonly maxEvalSteps: number;
  /**
   * Runtime budget of one evaluation, in size: characters of the strings and elements of the
   * lists and maps that calls, `+`, literals and comprehensions produce. A record that needs
   * more is dead-lettered. The compile-time estimate must fit it too.
   */
  readonly maxEvalSize: number;
}

/** The default limits: generous for rules people write, small enough that every expression is cheap. */
export const DEFAULT_EXPR_LIMITS: ExprLimits = Object.freeze({
  maxLength: 4096,
  maxNodes: 512,
  maxDepth: 32,
  maxComprehensions: 4,
  maxComprehensionNesting: 2,
  maxLiteralElements: 256,
  maxStringLiteral: 1024,
  maxEvalSteps: 100_000,
  maxEvalSize: 1_000_000,
});

/** One broken limit: what and where (0-based offset into the source). */
export interface LimitViolation {
  readonly reason: string;
  readonly offset: number;
}

/** Names of the macros that iterate (or bind) a variable. */
export const COMPREHENSIONS: ReadonlySet<string> = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/** True when `node` is `cel.bind(var, value, expr)`. */
export function isBind(node: ASTNode): boolean {
  if (node.op !== 'rcall') return false;
  const [name, receiver] = node.args;
  return name === 'bind' && receiver.op === 'id' && receiver.args === 'cel';
}

/** True when `node` is a comprehension macro call such as `list.exists(x, p)`. */
export function isComprehension(node: ASTNode): boolean {
  if (node.op !== 'rcall') return false;
  const [name, , args] = node.args;
  return COMPREHENSIONS.has(name) && (args.length === 2 || args.length === 3) && args[0]?.op === 'id';
}

/**
 * Walks `root` and returns the first limit it breaks, or undefined. Counts every node, the
 * depth, comprehension count and nesting, literal sizes, and checks `matches()` patterns.
 */
export function checkLimits(root: ASTNode, limits: ExprLimits): LimitViolation | undefined {
  let nodes = 0;
  let comprehensions = 0;
  let violation: LimitViolation | undefined;
  const fail = (reason: string, node: ASTNode): void => {
    violation ??= { reason, offset: node.start };
  };
  const visit = (node: ASTNode, depth: number, nesting: number): void => {
    if (violation) return;
    nodes++;
    if (nodes > limits.maxNodes) {
      fail(`the expression has more than ${limits.maxNodes} nodes (limit maxNodes)`, node);
      return;
    }
    if (depth > limits.maxDepth) {
      fail(`the expression nests deeper than ${limits.maxDepth} levels (limit maxDepth)`, node);
      return;
    }
    switch (node.op) {
      case 'value': {
        const v = node.args;
        const len = typeof v === 'string' ? v.length : v instanceof Uint8Array ? v.length : 0;
        if (len > limits.maxStringLiteral)
          fail(
            `a literal is longer than ${limits.maxStringLiteral} characters (limit maxStringLiteral)`,
            node,
          );
        return;
      }
      case 'id':
        return;
      case '.':
      case '.?': {
        visit(node.args[0], depth + 1, nesting);
        return;
      }
      case 'list':
        if (node.args.length > limits.maxLiteralElements) {
          fail(
            `a list literal has more than ${limits.maxLiteralElements} elements (limit maxLiteralElements)`,
            node,
          );
          return;
        }
        for (const a of node.args) visit(a, depth + 1, nesting);
        return;
      case 'map':
        if (node.args.length > limits.maxLiteralElements) {
          fail(
            `a map literal has more than ${limits.maxLiteralElements} entries (limit maxLiteralElements)`,
            node,
          );
          return;
        }
        for (const [k, v] of node.args) {
          visit(k, depth + 1, nesting);
          visit(v, depth + 1, nesting);
        }
        return;
      case 'call':
        for (const a of node.args[1]) visit(a, depth + 1, nesting);
        return;
      case 'rcall': {
        const [name, receiver, args] = node.args;
        const iterates = isComprehension(node) || isBind(node);
        if (iterates) {
          comprehensions++;
          if (comprehensions > limits.maxComprehensions) {
            fail(
              `the expression has more than ${limits.maxComprehensions} comprehensions (limit maxComprehensions)`,
              node,
            );
            return;
          }
          if (nesting + 1 > limits.maxComprehensionNesting) {
            fail(
              `comprehensions nest deeper than ${limits.maxComprehensionNesting} (limit maxComprehensionNesting)`,
              node,
            );
            return;
          }
        }
        if (name === 'matches') checkPattern(node, args, fail);
        visit(receiver, depth + 1, nesting);
        for (const a of args) visit(a, depth + 1, iterates ? nesting + 1 : nesting);
        return;
      }
      case '!_':
      case '-_': {
        visit(node.args, depth + 1, nesting);
        return;
      }
      case '?:':
        for (const a of node.args) visit(a, depth + 1, nesting);
        return;
      default:
        // Binary operators, `&&`, `||`, `[]`, `[?]`: two operands.
        for (const a of node.args as readonly ASTNode[]) visit(a, depth + 1, nesting);
    }
  };
  visit(root, 1, 0);
  return violation;
}

function checkPattern(
  node: ASTNode,
  args: readonly ASTNode[],
  fail: (reason: string, node: ASTNode) => void,
): void {
  const pattern = args[0];
  if (pattern === undefined || pattern.op !== 'value' || typeof pattern.args !== 'string') {
    fail(
      '`matches()` takes only a literal pattern (a pattern computed at run time could be unbounded)',
      node,
    );
    return;
  }
  const problem = unsafePattern(pattern.args);
  if (problem !== undefined) fail(`the pattern ${JSON.stringify(pattern.args)} ${problem}`, pattern);
}

/**
 * Why a regular expression could backtrack catastrophically, or undefined when it cannot:
 * rejects a quantified group that contains a quantifier or an alternation (`(a+)+`, `(a|a)*`),
 * backreferences and lookaround. Also rejects patterns JavaScript cannot compile.
 */
export function unsafePattern(source: string): string | undefined {
  try {
    new RegExp(source);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
  // Stack of open groups: does the group contain a quantifier or an alternation?
  const groups: { risky: boolean }[] = [];
  let lastGroupRisky = false;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const next = source[i + 1] ?? '';
      if (!inClass && /[1-9k]/.test(next)) return 'uses a backreference, which can take exponential time';
      i++;
      lastGroupRisky = false;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      lastGroupRisky = false;
      continue;
    }
    if (c === '(') {
      if (
        source.startsWith('(?=', i) ||
        source.startsWith('(?!', i) ||
        source.startsWith('(?<=', i) ||
        source.startsWith('(?<!', i)
      ) {
        return 'uses lookaround, which is not allowed in rules';
      }
      groups.push({ risky: false });
      lastGroupRisky = false;
      // Skip the prefix of a non-capturing `(?:` or named `(?<name>` group.
      if (source[i + 1] === '?') {
        const end = source[i + 2] === '<' ? source.indexOf('>', i) : i + 2;
        i = end < 0 ? i + 2 : end;
      }
      continue;
    }
    if (c === ')') {
      const g = groups.pop();
      lastGroupRisky = g?.risky ?? false;
      const parent = groups[groups.length - 1];
      if (parent && lastGroupRisky) parent.risky = true;
      continue;
    }
    if (c === '|') {
      const top = groups[groups.length - 1];
      if (top) top.risky = true;
      lastGroupRisky = false;
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      const isQuantifier = c !== '{' || /^\{\d+(,\d*)?\}/.test(source.slice(i));
      if (!isQuantifier) {
        lastGroupRisky = false;
        continue;
      }
      // A lazy/possessive marker after a quantifier is not a quantifier of its own.
      if (c === '?' && i > 0 && /[*+?}]/.test(source[i - 1] ?? '')) continue;
      if (lastGroupRisky)
        return 'repeats a group that itself repeats or alternates (like `(a+)+`), which can take exponential time';
      const top = groups[groups.length - 1];
      if (top) top.risky = true;
      if (c === '{') i = source.indexOf('}', i);
      lastGroupRisky = false;
      continue;
    }
    lastGroupRisky = false;
  }
  return undefined;
}
