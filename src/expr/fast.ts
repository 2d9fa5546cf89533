/**
 * The fast path: a closure compiler for the common subset of CEL that rules use (field
 * access, literals, comparisons, arithmetic, `&&` `||` `!` `?:`, `in` a literal list,
 * `startsWith`/`endsWith`/`contains`).
 *
 * It does not define semantics of its own. A compiled closure either returns exactly the
 * value the library's evaluator would return, or the {@link DEOPT} marker — for any value
 * type, error or corner case it does not handle — and the caller then evaluates the record
 * with the library. So an error (missing field, wrong type, overflow, division by zero) is
 * always reported by the library, and `fast.test.ts` checks the agreement on random
 * expressions and records. Expressions outside the subset get no fast path at all.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** Returned by a fast closure when the library must evaluate this record. */
export const DEOPT: unique symbol = Symbol('sluice.cel.deopt');

/** A compiled closure: record and `meta` view in, value or {@link DEOPT} out. */
export type FastFn = (record: unknown, meta: unknown) => unknown;

type F = FastFn;

const MAX_INT = 9223372036854775807n;
const MIN_INT = -9223372036854775808n;
const hasOwn = Object.hasOwn;
/** Names Object.prototype defines (`constructor`, `toString`, `__proto__`…): read only as own properties. */
const PROTO_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));
const OBJECT_PROTO = Object.prototype as unknown as Record<string, unknown>;

const STRING_TESTS: ReadonlySet<string> = new Set(['startsWith', 'endsWith', 'contains']);
const BOOLEAN_OPS: ReadonlySet<string> = new Set(['&&', '||', '!_', '==', '!=', '<', '<=', '>', '>=', 'in']);

/** A plain object (JSON object) whose own fields the library reads as a CEL map. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  // An own `constructor` field or another prototype fails this test: the library decides.
  return typeof v === 'object' && v !== null && (v as { constructor?: unknown }).constructor === Object;
}

function isPrimitive(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return true;
    default:
      return v === null;
  }
}

/**
 * Compiles `ast` (already parsed and type-checked) to a closure, or returns undefined when the
 * expression uses anything outside the subset. `fields` are the top-level identifiers that
 * name record fields.
 */
export function compileFast(ast: ASTNode, fields: ReadonlySet<string>): FastFn | undefined {
  const body = compile(ast, fields);
  if (body === undefined) return undefined;
  // These operators give a bool or DEOPT, nothing else.
  if (BOOLEAN_OPS.has(ast.op) || (ast.op === 'rcall' && STRING_TESTS.has(ast.args[0]))) return body;
  // Only primitive results leave the fast path; lists, maps and anything odd go to the library.
  return (r, m) => {
    const v = body(r, m);
    return isPrimitive(v) ? v : DEOPT;
  };
}

function compile(node: ASTNode, fields: ReadonlySet<string>): F | undefined {
  switch (node.op) {
    case 'value': {
      const v = node.args;
      if (!isPrimitive(v)) return undefined;
      return () => v;
    }
    case 'id': {
      const name = node.args;
      if (name === 'record') return (r) => r;
      if (name === 'meta') return (_r, m) => (m === undefined ? DEOPT : m);
      if (!fields.has(name)) return undefined;
      if (PROTO_KEYS.has(name)) {
        return (r) => {
          if (!isPlainObject(r) || !hasOwn(r, name)) return DEOPT;
          const v = r[name];
          return v === undefined ? DEOPT : v;
        };
      }
      return (r) => {
        if (!isPlainObject(r)) return DEOPT;
        const v = r[name];
        return v === undefined || (v === OBJECT_PROTO[name] && !hasOwn(r, name)) ? DEOPT : v;
      };
    }
    case '.': {
      const [objNode, key] = node.args;
      const obj = compile(objNode, fields);
      if (obj === undefined) return undefined;
      if (PROTO_KEYS.has(key)) {
        return (r, m) => {
          const o = obj(r, m);
          if (!isPlainObject(o) || !hasOwn(o, key)) return DEOPT;
          const v = o[key];
          return v === undefined ? DEOPT : v;
        };
      }
      // A plain object inherits only from Object.prototype. A value found that is not also
      // Object.prototype's (a polluted prototype) is own: no Object.hasOwn (~13 ns) per read.
      if (objNode.op === 'id' && objNode.args === 'record') {
        // `record.key`, the most common read, in one closure.
        return (r) => {
          if (!isPlainObject(r)) return DEOPT;
          const v = r[key];
          return v === undefined || (v === OBJECT_PROTO[key] && !hasOwn(r, key)) ? DEOPT : v;
        };
      }
      return (r, m) => {
        const o = obj(r, m);
        if (!isPlainObject(o)) return DEOPT;
        const v = o[key];
        return v === undefined || (v === OBJECT_PROTO[key] && !hasOwn(o, key)) ? DEOPT : v;
      };
    }
    case '&&':
    case '||': {
      const a = compile(node.args[0], fields);
      const b = compile(node.args[1], fields);
      if (a === undefined || b === undefined) return undefined;
      // Any non-bool operand (or error) leaves it to the library, which applies CEL's
      // commutative error rules (`error && false` is false).
      if (node.op === '&&') {
        return (r, m) => {
          const x = a(r, m);
          if (x === false) return false;
          if (x !== true) return DEOPT;
          const y = b(r, m);
          return y === true || y === false ? y : DEOPT;
        };
      }
      return (r, m) => {
        const x = a(r, m);
        if (x === true) return true;
        if (x !== false) return DEOPT;
        const y = b(r, m);
        return y === true || y === false ? y : DEOPT;
      };
    }
    case '!_': {
      const a = compile(node.args, fields);
      if (a === undefined) return undefined;
      return (r, m) => {
        const x = a(r, m);
        return x === true ? false : x === false ? true : DEOPT;
      };
    }
    case '-_': {
      const a = compile(node.args, fields);
      if (a === undefined) return undefined;
      return (r, m) => {
        const x = a(r, m);
        return typeof x === 'number' || typeof x === 'bigint' ? -x : DEOPT;
      };
    }
    case '?:': {
      const [c, t, f] = node.args.map((n) => compile(n, fields));
      if (c === undefined || t === undefined || f === undefined) return undefined;
      return (r, m) => {
        const x = c(r, m);
        return x === true ? t(r, m) : x === false ? f(r, m) : DEOPT;
      };
    }
    case '==':
    case '!=':
      return compileEquality(node.op, node.args[0], node.args[1], fields);
    case '<':
    case '<=':
    case '>':
    case '>=':
      return compileRelation(node.op, node.args[0], node.args[1], fields);
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return compileArithmetic(node.op, node.args[0], node.args[1], fields);
    case 'in':
      return compileIn(node.args[0], node.args[1], fields);
    case 'rcall': {
      const [name, receiver, args] = node.args;
      if (!STRING_TESTS.has(name) || args.length !== 1) return undefined;
      const recv = compile(receiver, fields);
      const arg = compile(args[0] as ASTNode, fields);
      if (recv === undefined || arg === undefined) return undefined;
      const test =
        name === 'contains'
          ? (s: string, t: string) => s.includes(t)
          : name === 'startsWith'
            ? (s: string, t: string) => s.startsWith(t)
            : (s: string, t: string) => s.endsWith(t);
      return (r, m) => {
        const s = recv(r, m);
        const t = arg(r, m);
        return typeof s === 'string' && typeof t === 'string' ? test(s, t) : DEOPT;
      };
    }
    default:
      return undefined;
  }
}

/**
 * The key when `node` reads one field of the record (`risk` or `record.risk`) that is not an
 * Object.prototype member: such leaves are fused into their comparison (one closure, not two).
 */
function recordKey(node: ASTNode, fields: ReadonlySet<string>): string | undefined {
  if (node.op === 'id' && fields.has(node.args) && !PROTO_KEYS.has(node.args)) return node.args;
  if (
    node.op === '.' &&
    node.args[0].op === 'id' &&
    node.args[0].args === 'record' &&
    !PROTO_KEYS.has(node.args[1])
  )
    return node.args[1];
  return undefined;
}

function literal(node: ASTNode): { value: unknown } | undefined {
  return node.op === 'value' && isPrimitive(node.args) ? { value: node.args } : undefined;
}

function compileEquality(
  op: '==' | '!=',
  ln: ASTNode,
  rn: ASTNode,
  fields: ReadonlySet<string>,
): F | undefined {
  const neg = op === '!=';
  const lit = literal(rn) ?? literal(ln);
  const other = literal(rn) ? ln : rn;
  if (lit !== undefined && typeof lit.value === 'string' && literal(other) === undefined) {
    const s = lit.value;
    const key = recordKey(other, fields);
    if (key !== undefined) {
      return (r) => {
        if (!isPlainObject(r)) return DEOPT;
        const x = r[key];
        if (typeof x !== 'string' || (x === OBJECT_PROTO[key] && !hasOwn(r, key))) return DEOPT;
        return (x === s) !== neg;
      };
    }
    const a = compile(other, fields);
    if (a === undefined) return undefined;
    return (r, m) => {
      const x = a(r, m);
      return typeof x === 'string' ? (x === s) !== neg : DEOPT;
    };
  }
  const a = compile(ln, fields);
  const b = compile(rn, fields);
  if (a === undefined || b === undefined) return undefined;
  return (r, m) => {
    const x = a(r, m);
    const y = b(r, m);
    const tx = typeof x;
    const ty = typeof y;
    let eq: boolean;
    if (tx === ty && (tx === 'string' || tx === 'number' || tx === 'boolean' || tx === 'bigint'))
      eq = x === y;
    else if ((tx === 'number' && ty === 'bigint') || (tx === 'bigint' && ty === 'number')) {
      // biome-ignore lint/suspicious/noDoubleEquals: number == bigint compares exactly, as the library does.
      eq = (x as number) == (y as number);
    } else if (x === null && y === null) eq = true;
    else return DEOPT;
    return eq !== neg;
  };
}

function compileRelation(
  op: '<' | '<=' | '>' | '>=',
  ln: ASTNode,
  rn: ASTNode,
  fields: ReadonlySet<string>,
): F | undefined {
  const cmp = comparator(op);
  const rl = literal(rn);
  // `field > 50`: compare numbers against the literal as a number when that is exact.
  if (
    rl !== undefined &&
    literal(ln) === undefined &&
    (typeof rl.value === 'bigint' || typeof rl.value === 'number')
  ) {
    const big = rl.value;
    const num = Number(big);
    if (typeof big === 'number' || Number.isSafeInteger(num)) {
      const key = recordKey(ln, fields);
      if (key !== undefined) {
        return (r) => {
          if (!isPlainObject(r)) return DEOPT;
          const x = r[key];
          if (x === OBJECT_PROTO[key] && !hasOwn(r, key)) return DEOPT;
          if (typeof x === 'number') return cmp(x, num);
          if (typeof x === 'bigint') return cmp(x, big);
          return DEOPT;
        };
      }
      const a = compile(ln, fields);
      if (a === undefined) return undefined;
      return (r, m) => {
        const x = a(r, m);
        if (typeof x === 'number') return cmp(x, num);
        if (typeof x === 'bigint') return cmp(x, big);
        return DEOPT;
      };
    }
  }
  // Same prelude as compileEquality's general case on purpose: the type rules after it differ
  // (null is equal to null but not ordered), and one closure each keeps the hot path one call.
  const a = compile(ln, fields);
  const b = compile(rn, fields);
  if (a === undefined || b === undefined) return undefined;
  return (r, m) => {
    const x = a(r, m);
    const y = b(r, m);
    const tx = typeof x;
    const ty = typeof y;
    const numeric = (tx === 'number' || tx === 'bigint') && (ty === 'number' || ty === 'bigint');
    if (numeric || (tx === ty && (tx === 'string' || tx === 'boolean'))) return cmp(x, y);
    return DEOPT;
  };
}

function comparator(op: '<' | '<=' | '>' | '>='): (a: unknown, b: unknown) => boolean {
  switch (op) {
    case '<':
      return (a, b) => (a as number) < (b as number);
    case '<=':
      return (a, b) => (a as number) <= (b as number);
    case '>':
      return (a, b) => (a as number) > (b as number);
    default:
      return (a, b) => (a as number) >= (b as number);
  }
}

function compileArithmetic(
  op: '+' | '-' | '*' | '/' | '%',
  ln: ASTNode,
  rn: ASTNode,
  fields: ReadonlySet<string>,
): F | undefined {
  const a = compile(ln, fields);
  const b = compile(rn, fields);
  if (a === undefined || b === undefined) return undefined;
  const dbl = doubleOp(op);
  const int = intOp(op);
  return (r, m) => {
    const x = a(r, m);
    const y = b(r, m);
    const tx = typeof x;
    const ty = typeof y;
    if (tx === 'number') {
      if (ty === 'number' || ty === 'bigint') return dbl(Number(x), Number(y));
      return DEOPT;
    }
    if (tx === 'bigint') {
      if (ty === 'bigint') return int(x as bigint, y as bigint);
      if (ty === 'number') return dbl(Number(x), y as number);
      return DEOPT;
    }
    if (op === '+' && tx === 'string' && ty === 'string') return (x as string) + (y as string);
    return DEOPT;
  };
}

function doubleOp(op: '+' | '-' | '*' | '/' | '%'): (a: number, b: number) => number {
  switch (op) {
    case '+':
      return (a, b) => a + b;
    case '-':
      return (a, b) => a - b;
    case '*':
      return (a, b) => a * b;
    case '/':
      return (a, b) => a / b;
    default:
      return (a, b) => a % b;
  }
}

/** int64 arithmetic as the library does it: overflow (+ - *) and zero divisors go to the library's error. */
function intOp(op: '+' | '-' | '*' | '/' | '%'): (a: bigint, b: bigint) => bigint | typeof DEOPT {
  const checked = (v: bigint) => (v > MAX_INT || v < MIN_INT ? DEOPT : v);
  switch (op) {
    case '+':
      return (a, b) => checked(a + b);
    case '-':
      return (a, b) => checked(a - b);
    case '*':
      return (a, b) => checked(a * b);
    case '/':
      return (a, b) => (b === 0n ? DEOPT : a / b);
    default:
      return (a, b) => (b === 0n ? DEOPT : a % b);
  }
}

function compileIn(ln: ASTNode, rn: ASTNode, fields: ReadonlySet<string>): F | undefined {
  if (rn.op !== 'list' || rn.args.length === 0) return undefined;
  const values = rn.args.map(literal);
  if (values.some((v) => v === undefined)) return undefined;
  const raw = values.map((v) => (v as { value: unknown }).value);
  const a = compile(ln, fields);
  if (a === undefined) return undefined;
  if (raw.every((v) => typeof v === 'string')) {
    const set = new Set(raw as string[]);
    return (r, m) => {
      const x = a(r, m);
      return typeof x === 'string' ? set.has(x) : DEOPT;
    };
  }
  const exact = raw.every(
    (v) => typeof v === 'number' || (typeof v === 'bigint' && Number.isSafeInteger(Number(v))),
  );
  if (!exact) return undefined;
  const set = new Set(raw.map(Number));
  return (r, m) => {
    const x = a(r, m);
    return typeof x === 'number' ? set.has(x) : DEOPT;
  };
}
