import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal } from '../../core/decimal.ts';
import { decimalJsonParser } from '../../formats/json.ts';
import { decodePayload, encodePayload, metaOf, parseDelivered } from './message.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('pulsar message codec', () => {
  it('round-trips json, text and raw payloads', () => {
    assert.deepEqual(decodePayload(encodePayload({ a: 1, s: 'x' }, 'json'), 'json'), { a: 1, s: 'x' });
    assert.equal(decodePayload(encodePayload('héllo', 'text'), 'text'), 'héllo');
    assert.deepEqual(
      decodePayload(encodePayload(Buffer.from([1, 2, 3]), 'raw'), 'raw'),
      Buffer.from([1, 2, 3]),
    );
  });

  it('refuses what a format cannot hold, and bad JSON', () => {
    assert.throws(() => encodePayload({ a: 1 }, 'text'), /format `text` writes strings/);
    assert.throws(() => encodePayload(3, 'raw'), /format `raw` writes bytes or strings/);
    assert.throws(() => decodePayload(b64('{nope'), 'json'));
  });

  it('`decimals`: json numbers of the listed fields are exact decimals; a word there throws naming the field', () => {
    const exact = decimalJsonParser(['amount']);
    const v = decodePayload(b64('{"amount":9007199254740993.05,"n":9007199254740993}'), 'json', exact) as {
      amount: unknown;
      n: unknown;
    };
    assert.ok(v.amount instanceof Decimal);
    assert.equal(String(v.amount), '9007199254740993.05');
    assert.equal(v.n, 9007199254740992, 'an unlisted field stays a double');
    assert.throws(
      () => decodePayload(b64('{"amount":"lots"}'), 'json', exact),
      /field `amount`: "lots" is not a decimal/,
    );
  });

  it('reads a delivered frame and ignores other frames', () => {
    assert.equal(parseDelivered('{"endOfTopic":false}'), undefined);
    const m = parseDelivered(
      JSON.stringify({
        messageId: 'CAEQAg==',
        payload: b64('{}'),
        key: 'k1',
        properties: { trace: 'x' },
        publishTime: '2026-01-01T00:00:01.000Z',
        eventTime: '2026-01-01T00:00:00.000Z',
        redeliveryCount: 2,
      }),
    );
    assert.ok(m);
    assert.deepEqual(metaOf('input', 'persistent://public/default/t', m), {
      source: 'input',
      position: { topic: 'persistent://public/default/t', messageId: 'CAEQAg==', redeliveryCount: 2 },
      key: 'k1',
      timestamp: Date.parse('2026-01-01T00:00:00.000Z'),
      headers: { trace: 'x' },
      attributes: { publishTime: Date.parse('2026-01-01T00:00:01.000Z') },
    });
  });
});
