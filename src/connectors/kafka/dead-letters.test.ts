import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeadLetter } from '../../core/stage.ts';
import { deadLetterMessage, isDeadLetter } from './dead-letters.ts';

const base = { stage: 'input', source: 'input', time: '2026-11-26T00:00:00.000Z' };

test('a message that failed to decode goes out as its original bytes, with the error in headers', () => {
  const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x00]);
  const letter: DeadLetter = {
    ...base,
    error: { code: 'SLUICE_PARSE', message: 'invalid JSON' },
    position: { topic: 't', partition: 2, offset: 7 },
    record: { key: 'k', valueBase64: bytes.toString('base64') },
  };
  const m = deadLetterMessage(letter, JSON.stringify);
  assert.deepEqual(m.value, bytes);
  assert.equal(m.headers.get('sluice.error.code'), 'SLUICE_PARSE');
  assert.equal(m.headers.get('sluice.error.message'), 'invalid JSON');
  assert.equal(m.headers.get('sluice.stage'), 'input');
  assert.equal(m.headers.get('sluice.source'), 'input');
  assert.equal(m.headers.get('sluice.position'), '{"topic":"t","partition":2,"offset":7}');
  const text = deadLetterMessage({ ...letter, record: { value: '{"id":2,' } }, JSON.stringify);
  assert.equal(text.value.toString(), '{"id":2,');
});

test('a record that failed in a later step goes out as JSON, even one with a lone `value` field', () => {
  const letter: DeadLetter = {
    ...base,
    stage: 'map',
    error: { code: 'SLUICE_RECORD', message: 'boom' },
    record: { value: 'x' },
  };
  assert.equal(deadLetterMessage(letter, JSON.stringify).value.toString(), '{"value":"x"}');
  assert.equal(deadLetterMessage(letter, JSON.stringify).headers.has('sluice.position'), false);
});

test('isDeadLetter tells dead letters from ordinary records', () => {
  assert.equal(isDeadLetter({ ...base, error: { code: 'X', message: 'm' }, record: 1 }), true);
  assert.equal(isDeadLetter({ id: 1, error: 'x' }), false);
  assert.equal(isDeadLetter(null), false);
});
