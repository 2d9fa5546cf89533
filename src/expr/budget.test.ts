import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SluiceError } from '../core/errors.ts';
import { Pipeline } from '../pipeline.ts';
import { instrument, Meter } from './budget.ts';
import { celEnvironment, compileExpression, MAX_VALUE_DEPTH } from './cel.ts';
import { CelFilter, CelMap } from './cel-operators.ts';
import { DEFAULT_EXPR_LIMITS } from './limits.ts';
import { CollectSink, memorySource } from './testing.test-helpers.ts';

const LIT = 'a'.repeat(1000);
/** The probe: 2.3 KB, within every structural limit, 80 s (or 1 GB) per record before. */
const AMPLIFIER = `"${LIT}".split("").map(x, "${LIT}").join("").split("").map(y, "x").join("").size() > 0`;

function compileFailure(source: string, limits = {}): SluiceError {
  try {
    compileExpression(source, { result: 'bool', limits });
  } catch (err) {
    assert.ok(err instanceof SluiceError);
    return err;
  }
  assert.fail(`\`${source.slice(0, 60)}\` compiled`);
}

describe('CEL cost estimate (compile time)', () => {
  test('a literal amplified by split/map/join is rejected, naming the sub-expression and the limit', () => {
    assert.ok(AMPLIFIER.length < DEFAULT_EXPR_LIMITS.maxLength);
    const err = compileFailure(AMPLIFIER);
    assert.equal(err.code, 'SLUICE_CONFIG');
    assert.match(err.message, /limit maxEvalSize/);
    assert.match(err.message, /can build a value of about 2\.00 million characters\/elements/);
    assert.equal(err.context.position, 0); // the first `split(…).map(…)`, before the rest grows it
  });

  test('growth through a record value is estimated too: map over a split of a field, join, concatenation', () => {
    const err = compileFailure(
      `s.split("").map(x, "${'b'.repeat(900)}").join("").split("").map(y, y + y + "${'c'.repeat(900)}").size() > 0`,
    );
    assert.match(err.message, /limit maxEval(Size|Steps)/);
  });

  test('nested comprehensions over a literal list multiply their steps', () => {
    const list = `[${Array.from({ length: 200 }, (_, i) => i).join(',')}]`;
    const err = compileFailure(
      `${list}.all(a, ${list}.all(b, "${'x'.repeat(100)}".split("").exists(c, c == "y")))`,
      { maxComprehensionNesting: 3 },
    );
    assert.match(err.message, /steps per input value.*limit maxEvalSteps/);
  });

  test('everyday expressions stay well inside the estimate', () => {
    for (const src of [
      'risk > 50 && country in ["US", "DE"]',
      'tags.exists(t, t.startsWith("vip"))',
      'items.all(i, i.qty > 0) && items.map(i, i.price * i.qty).size() > 0',
      'name.split(",").map(p, p.trim()).join(" ") != ""',
      'l.all(x, l.exists(y, x == y))',
    ])
      compileExpression(src.replace('.trim()', '.lowerAscii()'));
  });

  test('raising the budget admits the expression', () => {
    compileExpression(AMPLIFIER, { limits: { maxEvalSize: 1e9, maxEvalSteps: 1e9 } });
  });
});

describe('CEL evaluation budget (run time)', () => {
  test('a record that makes the expression grow past maxEvalSize fails with the budget, the record stays reachable', () => {
    const e = compileExpression('s.split("").map(x, s).join("").size() > 0', { result: 'bool' });
    assert.equal(e.evaluate({ s: 'abc' }), true);
    assert.throws(
      () => e.evaluate({ s: 'b'.repeat(3000) }, { source: 'f', position: { line: 7 } }),
      (err: unknown) =>
        err instanceof SluiceError &&
        err.code === 'SLUICE_RECORD' &&
        err.context.budget === 'maxEvalSize' &&
        /limit maxEvalSize/.test(err.message) &&
        /\{"line":7\}/.test(err.message),
    );
  });

  test('nested comprehensions over a big record list run out of maxEvalSteps', () => {
    const e = compileExpression('l.all(x, l.exists(y, x == y))', { result: 'bool' });
    const l = Array.from({ length: 2000 }, (_, i) => i);
    assert.throws(
      () => e.evaluate({ l }),
      (err: unknown) => err instanceof SluiceError && err.context.budget === 'maxEvalSteps',
    );
    // `exists` swallows errors of its steps; the budget still ends the evaluation.
    const q = compileExpression('l.exists(x, l.map(y, y).size() < 0)', { result: 'bool' });
    assert.throws(
      () => q.evaluate({ l }),
      (err: unknown) => err instanceof SluiceError && err.context.budget !== undefined,
    );
    // Budgets are per evaluation: a small record right after passes.
    assert.equal(e.evaluate({ l: [1, 2, 3] }), true);
  });

  test('a quantifier over a long list ends its loop once the budget is gone, not after every element', () => {
    for (const src of ['s.split("").exists(c, c == "z")', 's.split("").all(c, c == "a")']) {
      const parsed = celEnvironment().parse(src);
      parsed.check();
      const meter = new Meter(1000, 1e9);
      instrument(parsed.ast, meter);
      meter.reset();
      parsed({ s: 'a'.repeat(100_000) });
      assert.equal(meter.exceeded?.budget, 'maxEvalSteps', src);
      assert.ok(meter.steps <= 1002, `${src}: ${meter.steps} steps counted for a budget of 1000`);
    }
  });

  test('in a pipeline the record goes to the DLQ with the budget and its position, and the run goes on', async () => {
    const records = [{ s: 'ab' }, { s: 'z'.repeat(5000) }, { s: 'cd' }];
    const out = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('budget');
    p.from(memorySource(records, 3)).via(new CelFilter('s.split("").map(x, s).join("").size() > 0')).to(out);
    p.dlq(dlq);
    await p.run().done;
    assert.deepEqual(out.records, [{ s: 'ab' }, { s: 'cd' }]);
    assert.equal(dlq.letters.length, 1);
    const letter = dlq.letters[0];
    assert.equal(letter?.error.code, 'SLUICE_RECORD');
    assert.match(letter?.error.message ?? '', /evaluation budget.*limit maxEvalSize/);
    assert.deepEqual(letter?.position, { i: 1 });
  });

  test('deeply nested record values are dead-lettered, not a stack overflow', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    let medium: unknown = 1;
    for (let i = 0; i < MAX_VALUE_DEPTH + 10; i++) medium = [medium];
    const records = [
      { id: 1, a: deep, b: deep },
      { id: 2, a: 1, b: 1 },
      { id: 3, a: medium, b: 1 },
    ];
    const out = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('deep');
    p.from(memorySource(records, 3))
      .via(new CelFilter('record.id == 3 || record.a == record.b'))
      .via(new CelMap({ fields: { copy: 'a' } }))
      .to(out);
    p.dlq(dlq);
    await p.run().done;
    assert.deepEqual(
      out.records.map((r) => (r as { id: number }).id),
      [2],
    );
    assert.equal(dlq.letters.length, 2);
    for (const l of dlq.letters) assert.equal(l.error.code, 'SLUICE_RECORD');
  });
});
