import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { columnInfo, copyLine, copyRecord } from './encode.ts';

const columns = [columnInfo('id', 'int8'), columnInfo('note', 'text'), columnInfo('amount', 'numeric')];

test('copyRecord reads back what copyLine wrote, as text (tabs, newlines, backslashes, NULL)', () => {
  const line = copyLine({ id: 7, note: 'a\tb\nc\\d\re', amount: null }, columns);
  assert.deepEqual(copyRecord(line, columns), { id: '7', note: 'a\tb\nc\\d\re', amount: null });
  assert.equal(line.split('\n').length, 2, 'one line: the newline inside the value is escaped');
});

test('copyRecord inverts copyLine for any text values (property)', () => {
  fc.assert(
    fc.property(fc.string(), fc.option(fc.string(), { nil: null }), (note, amount) => {
      const line = copyLine({ id: 1, note, amount }, columns);
      assert.deepEqual(copyRecord(line, columns), { id: '1', note, amount });
    }),
  );
});
