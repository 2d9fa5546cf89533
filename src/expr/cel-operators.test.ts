import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SluiceError } from '../core/errors.ts';
import { Pipeline } from '../pipeline.ts';
import { CelFilter, CelMap, CelRoute, ruleVersionKey } from './cel-operators.ts';
import { filterSpec, mapSpec, routeSpec } from './spec.ts';
import { CollectSink, memorySource } from './testing.test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-expr-op-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const build = { baseDir: dir, pipelineName: 't', stageName: 'step' };

const events = [
  { risk: 60, event_type: 'login', country: 'US', id: 1 },
  { risk: 40, event_type: 'login', country: 'US', id: 2 },
  { risk: 90, event_type: 'login', country: 'DE', id: 3 },
  { risk: 'high', event_type: 'login', country: 'US', id: 4 },
  { event_type: 'login', country: 'US', id: 5 },
  { risk: 99, event_type: 'logout', country: 'DE', id: 6 },
  { risk: 70, event_type: 'login', country: 'FR', id: 7 },
];

describe('filter', () => {
  test('a YAML `- filter:` line works as written over JSONL records; failures go to the DLQ', async () => {
    const step = parseYaml(`- filter: 'risk > 50 && event_type == "login" && country in ["US", "DE"]'`)[0];
    const jsonl = events.map((e) => JSON.stringify(e)).join('\n');
    const records = jsonl.split('\n').map((l) => JSON.parse(l));
    const op = filterSpec.create(filterSpec.config.parse(step.filter), build);
    const out = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('f');
    p.from(memorySource(records)).via(op).to(out);
    p.dlq(dlq);
    const summary = await p.run().done;
    assert.deepEqual(
      out.records.map((r) => (r as { id: number }).id),
      [1, 3],
    );
    assert.deepEqual(
      dlq.letters.map((l) => (l.record as { id: number }).id),
      [4, 5],
    );
    assert.match(dlq.letters[0]?.error.message ?? '', /no such overload/);
    assert.match(dlq.letters[1]?.error.message ?? '', /Unknown variable: risk/);
    assert.equal(dlq.letters[1]?.error.code, 'SLUICE_RECORD');
    assert.deepEqual(dlq.letters[1]?.position, { i: 4 });
    assert.equal(summary.deadLetters, 2);
    // Metadata passes unchanged when there is no rule set to stamp.
    assert.deepEqual(out.meta[0], { source: 'mem', position: { i: 0 } });
  });

  test('a non-bool result is a dead letter', async () => {
    const out = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('f');
    p.from(memorySource([{ x: 1 }, { x: true }]))
      .via(new CelFilter('x'))
      .to(out);
    p.dlq(dlq);
    await p.run().done;
    assert.deepEqual(out.records, [{ x: true }]);
    assert.match(dlq.letters[0]?.error.message ?? '', /gave a double, not a bool/);
  });

  test('without a DLQ a failing record stops the run with a message saying what to do', async () => {
    const p = new Pipeline('f');
    p.from(memorySource([{ y: 1 }]))
      .via(new CelFilter('x > 1'))
      .to(new CollectSink());
    await assert.rejects(p.run().done, /Configure a `dlq` output/);
  });

  test('compile errors surface when the step is built, before the pipeline starts', () => {
    assert.throws(
      () => filterSpec.create(filterSpec.config.parse('risk > '), build),
      (err: unknown) =>
        err instanceof SluiceError && /column 8/.test(err.message) && err.context.position === 7,
    );
    assert.throws(() => new CelFilter('"x".matches("(a|aa)*b")'), /repeats a group/);
  });

  test('spec config: string shorthand, object form, and errors', () => {
    assert.equal(filterSpec.config.parse('a > 1'), 'a > 1');
    assert.deepEqual(filterSpec.config.parse({ expr: 'a > 1' }), { expr: 'a > 1' });
    assert.equal(filterSpec.config.safeParse({}).success, false);
    assert.equal(
      filterSpec.config.safeParse({ expr: 'a', rules: { file: 'x', url: 'http://x' } }).success,
      false,
    );
    assert.equal(filterSpec.config.safeParse({ rules: { file: 'x', pollInterval: '5 s' } }).success, false);
    assert.equal(filterSpec.config.safeParse({ expr: 'a', bogus: 1 }).success, false);
    // Specs produce a JSON Schema for editors.
    for (const spec of [filterSpec, mapSpec, routeSpec])
      assert.equal(typeof z.toJSONSchema(spec.config, { io: 'input' }), 'object');
  });
});

describe('map', () => {
  test('computed fields are merged into a new record; the input is not changed', async () => {
    const input = [{ price: 2.5, qty: 4, tmp: 'x' }, { price: 10, qty: 'two', tmp: 'y' }, 'not an object'];
    const op = mapSpec.create(
      mapSpec.config.parse({
        fields: { total: 'price * qty', big: 'price * qty > 5.0', n: 'size(tmp)' },
        drop: ['tmp'],
      }),
      build,
    );
    const out = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('m');
    p.from(memorySource(input)).via(op).to(out);
    p.dlq(dlq);
    await p.run().done;
    assert.deepEqual(out.records, [{ price: 2.5, qty: 4, total: 10, big: true, n: 1 }]);
    assert.deepEqual(input[0], { price: 2.5, qty: 4, tmp: 'x' });
    assert.equal(dlq.letters.length, 2);
    assert.match(dlq.letters[1]?.error.message ?? '', /records that are objects/);
  });

  test('`__proto__` is not a field name', () => {
    const parsed = mapSpec.config.safeParse({ fields: JSON.parse('{"__proto__": "1", "ok": "1"}') });
    // zod either rejects the key or drops it; it never reaches a record.
    assert.ok(!parsed.success || !Object.hasOwn(parsed.data.fields ?? {}, '__proto__'));
    assert.throws(() => new CelMap({ fields: JSON.parse('{"__proto__": "1"}') }), /__proto__/);
  });
});

describe('route', () => {
  test('records go to the port of the first true case, else default, else the DLQ', async () => {
    const op = routeSpec.create(
      routeSpec.config.parse({
        cases: [
          { when: 'risk > 80', to: 'high' },
          { when: 'risk > 50', to: 'out' },
        ],
      }),
      build,
    );
    const high = new CollectSink();
    const main = new CollectSink();
    const dlq = new CollectSink();
    const p = new Pipeline('r');
    const s = p.from(memorySource(events)).via(op);
    s.to(main);
    s.side('high').to(high);
    p.dlq(dlq);
    await p.run().done;
    assert.deepEqual(
      high.records.map((r) => (r as { id: number }).id),
      [3, 6],
    );
    assert.deepEqual(
      main.records.map((r) => (r as { id: number }).id),
      [1, 7],
    );
    // 2: no case, no default; 4: type error; 5: missing field.
    assert.deepEqual(dlq.letters.map((l) => (l.record as { id: number }).id).sort(), [2, 4, 5]);
    assert.ok(dlq.letters.some((l) => /no route case matched/.test(l.error.message)));
  });

  test('`default` takes what no case matches', async () => {
    const main = new CollectSink();
    const low = new CollectSink();
    const p = new Pipeline('r');
    const s = p
      .from(memorySource([{ risk: 1 }, { risk: 99 }]))
      .via(new CelRoute({ cases: [{ when: 'risk > 50', to: 'out' }], default: 'low' }));
    s.to(main);
    s.side('low').to(low);
    await p.run().done;
    assert.deepEqual(main.records, [{ risk: 99 }]);
    assert.deepEqual(low.records, [{ risk: 1 }]);
  });
});

describe('version stamps', () => {
  test('with a rule file every output record carries the version in meta.attributes', async () => {
    const file = join(dir, 'stamp.yaml');
    writeFileSync(file, 'version: 7\nfilter: risk > 50\n');
    const op = filterSpec.create(filterSpec.config.parse({ rules: { file: 'stamp.yaml' } }), build);
    const out = new CollectSink();
    const p = new Pipeline('v');
    p.from(memorySource([{ risk: 60 }, { risk: 1 }]))
      .via(op, { name: 'gate' })
      .to(out);
    await p.run().done;
    assert.deepEqual(out.meta, [
      { source: 'mem', position: { i: 0 }, attributes: { [ruleVersionKey('gate')]: 7 } },
    ]);
    assert.equal((op as CelFilter).ruleVersion, 7);
  });

  test('a rule file that does not compile fails the start', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'filter: risk >\n');
    const p = new Pipeline('v');
    p.from(memorySource([{ risk: 60 }]))
      .via(new CelFilter({ rules: { file } }))
      .to(new CollectSink());
    await assert.rejects(p.run().done, /risk >.*Unexpected token/s);
  });

  test('a rule file that cannot be read falls back to the inline expression', async () => {
    const out = new CollectSink();
    const warnings: string[] = [];
    const log = { info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const p = new Pipeline('v');
    const op = new CelFilter({ expr: 'risk > 50', rules: { file: join(dir, 'nope.yaml') } });
    p.from(memorySource([{ risk: 60 }]))
      .via(op)
      .to(out);
    await p.run({ log }).done;
    assert.equal(out.records.length, 1);
    assert.equal(op.ruleSourceErrors, 1);
    assert.match(warnings[0] ?? '', /Could not read rule set/);
  });
});
