import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cutText, deeperThan, MAX_RECORD_DEPTH, previewRecord, tooDeepError } from './nesting.ts';

function deepValue(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

describe('deeperThan', () => {
  it('finds where a value nests deeper than the limit, without recursing', () => {
    assert.equal(deeperThan(deepValue(MAX_RECORD_DEPTH)), undefined);
    assert.equal(deeperThan(deepValue(MAX_RECORD_DEPTH + 1)), 'a.a.a.a.a.a…');
    assert.equal(deeperThan(deepValue(1_000_000)), 'a.a.a.a.a.a…');
    assert.equal(deeperThan({ x: [1, { y: [2] }] }, 3), 'x.1.y');
    assert.equal(deeperThan({ x: [1, { y: [2] }] }, 4), undefined);
    assert.equal(deeperThan('text'), undefined);
  });

  it('counts a cycle as deep', () => {
    const loop: Record<string, unknown> = {};
    loop.me = loop;
    assert.equal(deeperThan(loop, 3), 'me.me.me');
  });

  it('names the limit and the path in its error', () => {
    const err = tooDeepError('writing JSON', 'a.b');
    assert.equal(err.code, 'SLUICE_RECORD');
    assert.deepEqual(err.context, { field: 'a.b', maxDepth: 512 });
  });
});

describe('previewRecord', () => {
  it('renders any value as bounded text and never throws', () => {
    assert.equal(
      previewRecord({ a: [1, 'x', 2n, null, undefined, Number.NaN] }),
      '{"a":[1,"x",2,null,null,null]}',
    );
    const deep = previewRecord(deepValue(1_000_000));
    assert.ok(deep.startsWith('{"a":{"a":'), deep.slice(0, 20));
    assert.ok(deep.includes('"…"'));
    assert.ok(previewRecord({ s: 'x'.repeat(100_000) }).length <= 4097);
    assert.ok(previewRecord(Array.from({ length: 100_000 }, (_, i) => i)).length <= 4097);
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    assert.ok(previewRecord(loop).startsWith('{"a":1,"self":{"a":1,'));
    const hostile = {
      get bad(): never {
        throw new Error('getter');
      },
    };
    assert.equal(previewRecord(hostile), '{"bad":null}');
    assert.equal(
      previewRecord(
        new Proxy(
          {},
          {
            ownKeys: () => {
              throw new Error('proxy');
            },
          },
        ),
      ),
      '{}',
    );
    assert.equal(previewRecord(Buffer.from('héllo')), 'héllo');
    assert.equal(previewRecord({ d: new Date(Number.NaN) }), '{"d":"Invalid Date"}');
  });

  it('cuts text without splitting a surrogate pair', () => {
    assert.equal(cutText('ab😀', 3), 'ab…');
    assert.equal(cutText('abc', 3), 'abc');
  });
});
