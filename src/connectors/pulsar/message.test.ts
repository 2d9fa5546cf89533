import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
