import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SluiceError } from '../core/errors.ts';
import { compileExpression, lineColumn, metaView, toRecordValue } from './cel.ts';
import { unsafePattern } from './limits.ts';

/** Asserts that compiling `src` fails with a SLUICE_CONFIG error and returns it. */
function compileFails(src: string, options: Parameters<typeof compileExpression>[1] = {}): SluiceError {
  try {
    compileExpression(src, options);
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${err}`);
    assert.equal(err.code, 'SLUICE_CONFIG');
    return err;
  }
  assert.fail(`\`${src}\` compiled but should not`);
}

function runtimeFails(src: string, record: unknown): SluiceError {
  const e = compileExpression(src);
  try {
    e.evaluate(record);
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${err}`);
    assert.equal(err.code, 'SLUICE_RECORD');
    return err;
  }
  assert.fail(`\`${src}\` evaluated but should have failed`);
}

describe('compileExpression: variables', () => {
  test('the issue expression works over a JSON record, as written', () => {
    const e = compileExpression('risk > 50 && event_type == "login" && country in ["US", "DE"]', {
      result: 'bool',
    });
    assert.equal(e.fast, true);
    assert.equal(e.evaluate({ risk: 60, event_type: 'login', country: 'US' }), true);
    assert.equal(e.evaluate({ risk: 60.5, event_type: 'login', country: 'DE' }), true);
    assert.equal(e.evaluate({ risk: 50, event_type: 'login', country: 'US' }), false);
    assert.equal(e.evaluate({ risk: 90, event_type: 'logout', country: 'US' }), false);
    assert.equal(e.evaluate({ risk: 90, event_type: 'login', country: 'FR' }), false);
  });

  test('the whole record is `record`, nested fields work', () => {
    const e = compileExpression('record.type == "login" && record.user.age >= 18');
    assert.equal(e.evaluate({ type: 'login', user: { age: 20 } }), true);
    assert.equal(e.evaluate({ type: 'login', user: { age: 17 } }), false);
  });

  test('`meta` holds source, key, timestamp and the position fields', () => {
    const e = compileExpression(
      'meta.source == "in" && meta.partition == 3 && meta.offset > 10 && meta.key == "k1" && meta.timestamp > 0',
    );
    const meta = { source: 'in', position: { partition: 3, offset: 11n }, key: 'k1', timestamp: 5 };
    assert.equal(e.evaluate({}, meta), true);
    assert.equal(e.evaluate({}, { ...meta, key: 'k2' }), false);
    assert.deepEqual(metaView(undefined), {});
  });

  test('JSON numbers mix with int literals in arithmetic and remainder', () => {
    assert.equal(compileExpression('qty * 2').evaluate({ qty: 3 }), 6);
    assert.equal(compileExpression('price * qty').evaluate({ price: 2.5, qty: 4 }), 10);
    assert.equal(compileExpression('id % 2 == 0').evaluate({ id: 4 }), true);
    assert.equal(compileExpression('id % 2 == 0').evaluate({ id: 5 }), false);
  });

  test('comprehensions and functions go through the library', () => {
    const e = compileExpression('tags.exists(t, t.startsWith("vip")) && size(tags) == 2');
    assert.equal(e.fast, false);
    assert.equal(e.evaluate({ tags: ['a', 'vip-1'] }), true);
    assert.equal(e.evaluate({ tags: ['a', 'b'] }), false);
  });

  test('results become plain record values', () => {
    assert.equal(toRecordValue(7n), 7);
    assert.equal(toRecordValue(2n ** 60n), 2n ** 60n);
    assert.deepEqual(toRecordValue([1n, { a: 2n }]), [1, { a: 2 }]);
    assert.deepEqual(toRecordValue(new Map([['x', 1n]])), { x: 1 });
    assert.deepEqual(compileExpression('{"n": size(tags)}').evaluate({ tags: [1, 2] }), { n: 2n });
  });
});

describe('compileExpression: compile errors name the expression, position and reason', () => {
  test('syntax error at the end', () => {
    const err = compileFails('risk > ', { what: 'filter' });
    assert.match(err.message, /filter expression `risk > ` is invalid at column 8: Unexpected token: EOF/);
    assert.equal(err.context.position, 7);
    assert.equal(err.context.exprColumn, 8);
  });

  test('syntax error in the middle', () => {
    const err = compileFails('risk +* 2');
    assert.equal(err.context.exprColumn, 7);
    assert.match(String(err.context.reason), /MULTIPLY/);
  });

  test('line and column on a multi-line expression', () => {
    const err = compileFails('risk > 50 &&\n  (country ==');
    assert.equal(err.context.exprLine, 2);
    assert.match(err.message, /line 2, column 14/);
    assert.deepEqual(lineColumn('ab\ncd', 4), { line: 2, column: 2 });
  });

  test('type errors found before any record', () => {
    assert.match(compileFails('"a" + 1').message, /no such overload: string \+ int/);
    assert.match(compileFails('type == "login"').message, /no such overload: type == string/);
  });

  test('a filter that cannot be a bool is rejected', () => {
    assert.match(compileFails('1 + 2', { result: 'bool' }).message, /must be a bool.*`int`/);
  });

  test('an empty expression is rejected', () => {
    assert.match(compileFails('   ').message, /empty/);
  });
});

describe('compileExpression: limits', () => {
  test('a too-deep expression is rejected', () => {
    assert.match(compileFails(`${'!'.repeat(40)}ok`).message, /maxDepth/);
    assert.equal(compileExpression(`${'!'.repeat(20)}ok`).evaluate({ ok: true }), true);
    const chain = Array.from({ length: 40 }, (_, i) => `a${i}`).join(' + ');
    assert.match(compileFails(chain).message, /maxDepth/);
  });

  test('too many nodes is rejected', () => {
    const wide = Array.from({ length: 300 }, (_, i) => `a${i} == 1`).join(' || ');
    assert.match(compileFails(wide, { limits: { maxDepth: 1000 } }).message, /maxNodes/);
  });

  test('nested comprehensions beyond the limit are rejected', () => {
    const l = '[0,1,2,3,4,5,6,7,8,9]';
    const nested = `${l}.all(a, ${l}.all(b, ${l}.all(c, a + b + c >= 0)))`;
    const err = compileFails(nested);
    assert.match(err.message, /maxComprehensionNesting/);
    // Two levels are allowed by default.
    assert.equal(compileExpression(`${l}.all(a, ${l}.all(b, a + b >= 0))`).evaluate({}), true);
  });

  test('too many comprehensions, and cel.bind counts as one', () => {
    const five = Array.from({ length: 5 }, () => 'l.exists(x, x > 1)').join(' || ');
    assert.match(compileFails(five).message, /maxComprehensions/);
    assert.match(
      compileFails('cel.bind(a, l, cel.bind(b, a, cel.bind(c, b, c)))').message,
      /maxComprehensionNesting/,
    );
  });

  test('the pathological ReDoS expression is rejected at compile time, never run', () => {
    const err = compileFails('"aaaaaaaaaaaaaaaaaaaaaaaaa".matches("(a+)+b")');
    assert.match(err.message, /repeats a group/);
    assert.equal(err.context.exprColumn, 37);
  });

  test('patterns: computed ones, backreferences and lookaround are rejected; simple ones pass', () => {
    assert.match(compileFails('name.matches(pattern)').message, /literal pattern/);
    assert.notEqual(unsafePattern('(a|b)*c'), undefined);
    assert.notEqual(unsafePattern('(x+x+)+y'), undefined);
    assert.notEqual(unsafePattern('(a)\\1'), undefined);
    assert.notEqual(unsafePattern('(?=a)a'), undefined);
    assert.notEqual(unsafePattern('(?:a*)*'), undefined);
    assert.notEqual(unsafePattern('('), undefined);
    assert.equal(unsafePattern('^[a-z]+@[a-z]+\\.com$'), undefined);
    assert.equal(unsafePattern('(?:ab)+c'), undefined);
    assert.equal(unsafePattern('a{2,3}b*?'), undefined);
    assert.equal(
      compileExpression('email.matches("^[a-z]+@example\\\\.com$")').evaluate({ email: 'bob@example.com' }),
      true,
    );
  });

  test('long literals and long expressions are rejected', () => {
    assert.match(compileFails(`x == "${'a'.repeat(2000)}"`).message, /maxStringLiteral/);
    assert.match(compileFails(`x == 1 ${'|| x == 1 '.repeat(500)}`).message, /maxLength/);
    assert.match(
      compileFails(`x in [${Array.from({ length: 300 }, () => '1').join(',')}]`).message,
      /maxLiteralElements/,
    );
  });
});

describe('compileExpression: nothing outside the record', () => {
  test('prototype members are not variables', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const err = runtimeFails(`${name} != null`, { a: 1 });
      assert.match(err.message, new RegExp(`Unknown variable: ${name}`));
    }
    assert.match(compileFails('__proto__ == null').message, /__proto__/);
  });

  test('prototype members are not fields of the record or nested maps', () => {
    for (const src of [
      'record.constructor',
      'record["constructor"]',
      'record.__proto__',
      'record["__proto__"]',
      'user.toString',
      'record.user.constructor',
    ]) {
      const err = runtimeFails(src, { user: { name: 'x' } });
      assert.match(err.message, /No such key/, src);
    }
    const err = runtimeFails('record.__proto__.constructor == null', { a: 1 });
    assert.match(err.message, /No such key: __proto__/);
  });

  test('own fields named like prototype members are readable', () => {
    assert.equal(compileExpression('constructor == "x"').evaluate({ constructor: 'x' }), true);
    assert.equal(compileExpression('record.toString == 1').evaluate({ toString: 1 }), true);
  });

  test('a polluted Object.prototype is not visible through the fast path', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.leaky = 'leak';
    try {
      assert.match(runtimeFails('record.leaky == "leak"', { a: 1 }).message, /No such key: leaky/);
      assert.match(runtimeFails('leaky == "leak"', { a: 1 }).message, /Unknown variable: leaky/);
      proto.leakyNumber = 99;
      assert.match(runtimeFails('record.leakyNumber > 50', { a: 1 }).message, /No such key: leakyNumber/);
      assert.match(runtimeFails('leakyNumber > 50', { a: 1 }).message, /Unknown variable: leakyNumber/);
      assert.equal(compileExpression('record.leaky == "own"').evaluate({ leaky: 'own' }), true);
    } finally {
      delete proto.leaky;
      delete proto.leakyNumber;
    }
  });

  test('records carry no functions into expressions', () => {
    const err = runtimeFails('f == 1', { f: () => 1 });
    assert.match(err.message, /Unsupported type|no such overload|function/i);
  });
});

describe('compileExpression: runtime errors are per record', () => {
  test('a missing field names the variable and the position', () => {
    const err = runtimeFails('x > 1 && risk > 50', { x: 2 });
    assert.match(err.message, /Unknown variable: risk/);
    assert.equal(err.context.exprColumn, 10);
  });

  test('a type error', () => {
    assert.match(runtimeFails('risk > 50', { risk: '60' }).message, /no such overload/);
  });

  test('integer overflow and division by zero', () => {
    assert.match(runtimeFails('9223372036854775807 + n', { n: 1n }).message, /overflow/);
    assert.match(runtimeFails('10 / n', { n: 0n }).message, /division by zero/);
  });

  test('CEL error semantics: false && error is false', () => {
    assert.equal(compileExpression('missing > 1 && false').evaluate({}), false);
    assert.equal(compileExpression('true || missing > 1').evaluate({}), true);
  });
});
