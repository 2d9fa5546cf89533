import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { celEnvironment, compileExpression } from './cel.ts';
import { compileFast, DEOPT } from './fast.ts';

/** Outcome of evaluating: a value, or the fact that it failed. */
function outcome(run: () => unknown): { value: unknown } | { error: true } {
  try {
    return { value: run() };
  } catch {
    return { error: true };
  }
}

const fieldRefs = [
  'a',
  'b',
  's',
  't',
  'n',
  'flag',
  'record.a',
  'record.s',
  'o.x',
  'record.o.y',
  'missing',
  'record.missing',
];
const literals = [
  '0',
  '1',
  '50',
  '-3',
  '2.5',
  '0.0',
  '"login"',
  '"x"',
  '""',
  'true',
  'false',
  'null',
  '9223372036854775807',
];

const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...fieldRefs),
    fc.constantFrom(...literals),
    fc
      .tuple(
        tie('e'),
        fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', '&&', '||'),
        tie('e'),
      )
      .map(([l, op, r]) => `(${l} ${op} ${r})`),
    tie('e').map((x) => `!(${x})`),
    tie('e').map((x) => `-(${x})`),
    fc.tuple(tie('e'), tie('e'), tie('e')).map(([c, x, y]) => `(${c} ? ${x} : ${y})`),
    tie('e').map((x) => `(${x} in ["login", "x", "US"])`),
    tie('e').map((x) => `(${x} in [1, 2.5, 50])`),
    fc
      .tuple(tie('e'), fc.constantFrom('startsWith', 'endsWith', 'contains'), tie('e'))
      .map(([x, f, y]) => `${x}.${f}(${y})`),
  ),
})).e;

const value: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.integer({ min: -3, max: 60 }), weight: 4 },
  fc.constantFrom(0, -0, 2.5, 50, Number.NaN, Number.POSITIVE_INFINITY, 1e300),
  fc.double(),
  fc.bigInt({ min: -3n, max: 60n }),
  fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n)),
  fc.constantFrom('login', 'x', '', 'US', 'lo'),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ x: 1 }),
  fc.constant([1, 2]),
);

const record = fc.record(
  {
    a: value,
    b: value,
    s: value,
    t: value,
    n: value,
    flag: value,
    o: fc.oneof(fc.record({ x: value, y: value }), value),
  },
  { requiredKeys: ['a', 'b', 's', 't', 'o'] },
);

test('the fast path agrees with the library on random expressions and records', () => {
  let fastChecked = 0;
  fc.assert(
    fc.property(expr, fc.array(record, { minLength: 1, maxLength: 8 }), (src, records) => {
      let fast: ReturnType<typeof compileExpression>;
      let lib: ReturnType<typeof compileExpression>;
      try {
        fast = compileExpression(src);
        lib = compileExpression(src, { fastPath: false });
      } catch {
        return; // type errors at compile time are not the point here
      }
      if (!fast.fast) return;
      fastChecked++;
      for (const r of records) {
        assert.deepStrictEqual(
          outcome(() => fast.evaluate(r)),
          outcome(() => lib.evaluate(r)),
          `${src} on ${String(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)))}`,
        );
      }
    }),
    { numRuns: 5000 },
  );
  assert.ok(fastChecked > 500, `only ${fastChecked} expressions took the fast path`);
});

test('the fast path gives DEOPT, never a value, where the library fails', () => {
  const fields = new Set(['risk']);
  const f = compileFast(celEnvironment().parse('risk > 50').ast, fields);
  assert.ok(f);
  assert.equal(f({ risk: 60 }, undefined), true);
  assert.equal(f({ risk: '60' }, undefined), DEOPT);
  assert.equal(f({}, undefined), DEOPT);
  assert.equal(f(Object.create(null), undefined), DEOPT);
  assert.equal(f({ constructor: 1, risk: 60 }, undefined), DEOPT);
});

test('expressions outside the subset get no fast path', () => {
  for (const src of [
    'l.exists(x, x > 1)',
    'size(s) > 1',
    'l[0] == 1',
    'int(s) > 1',
    'has(r.a)',
    's.matches("a")',
  ]) {
    assert.equal(compileExpression(src).fast, false, src);
  }
});
