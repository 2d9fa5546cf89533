/**
 * Protobuf encoding coercions: JSON values as pipelines hold them (int64 as text, ISO times,
 * decimal text, enum names…) become the field types of the message, and a value that does not
 * fit is refused with the path of its field and what was expected.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { plainValue } from '../avro-file/test-helpers.ts';
import { protobufSchemas } from './protobuf.ts';

const PROTO = `syntax = "proto3"; package shop;
import "google/protobuf/timestamp.proto"; import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto"; import "google/protobuf/struct.proto";
import "google/type/decimal.proto";
enum Kind { UNKNOWN = 0; CARD = 1; CASH = 2; }
message Line { string sku = 1; google.type.Decimal price = 2; uint32 qty = 3; }
message Order {
  int64 id = 1; uint64 big = 2; int32 risk = 3; double score = 4; float ratio = 5; bool flagged = 6;
  string user = 7; bytes raw = 8; Kind kind = 9; google.protobuf.Timestamp at = 10;
  google.protobuf.Duration took = 11; google.type.Decimal amount = 12; repeated Line lines = 13;
  map<string, int64> counts = 14; google.protobuf.Int64Value maybe = 15; google.protobuf.Struct extra = 16;
  oneof pay { string card = 17; string iban = 18; }
}`;

const s = protobufSchemas({ proto: PROTO });
const encode = (record: unknown) => s.encode(record, 'shop.Order');
/** Decoded again; decimals (`Decimal`) as their text. */
const roundTrip = (record: unknown) =>
  plainValue(s.decode(encode(record), undefined, 'shop.Order')) as Record<string, unknown>;

describe('protobuf encoding coercions', () => {
  test('JSON values become the field types', () => {
    const out = roundTrip({
      id: '9223372036854775807',
      big: 18446744073709551615n,
      risk: '-42',
      score: '1.5',
      ratio: 'Infinity',
      flagged: 'true',
      user: 'ann',
      raw: 'AQID',
      kind: 'CARD',
      at: '2026-03-01T12:00:00.250Z',
      took: '-1.500s',
      amount: 12.5,
      lines: [{ sku: 'a', price: '0.10', qty: '3' }],
      counts: { x: '-9007199254740993', y: 7 },
      maybe: '5',
      extra: { a: [1, 'b', null, { c: true }] },
      iban: 'DE00',
    });
    assert.deepEqual(out, {
      id: 2n ** 63n - 1n,
      big: 2n ** 64n - 1n,
      risk: -42,
      score: 1.5,
      ratio: Number.POSITIVE_INFINITY,
      flagged: true,
      user: 'ann',
      raw: 'AQID',
      kind: 'CARD',
      at: '2026-03-01T12:00:00.250Z',
      took: '-1.500s',
      amount: '12.5',
      lines: [{ sku: 'a', price: '0.10', qty: 3 }],
      counts: { x: -9007199254740993n, y: 7 },
      maybe: 5,
      extra: { a: [1, 'b', null, { c: true }] },
      iban: 'DE00',
    });
  });

  test('times as Date, epoch ms, offsets and nanoseconds; enums by number', () => {
    assert.equal(roundTrip({ at: new Date(Date.UTC(2026, 0, 2)) }).at, '2026-01-02T00:00:00.000Z');
    assert.equal(roundTrip({ at: 1_767_225_600_001 }).at, '2026-01-01T00:00:00.001Z');
    assert.equal(roundTrip({ at: '2026-01-01T01:00:00+01:00' }).at, '2026-01-01T00:00:00.000Z');
    assert.equal(roundTrip({ at: '2026-01-01T00:00:00.123456789Z' }).at, '2026-01-01T00:00:00.123456789Z');
    assert.equal(roundTrip({ kind: 2 }).kind, 'CASH');
  });

  const refused: [string, unknown, RegExp][] = [
    [
      'id as a fraction',
      { id: 1.5 },
      /field `id`: 1.5 is not a 64-bit integer \(`int64`\): it has a fraction/,
    ],
    ['id as words', { id: 'twelve' }, /field `id`: `twelve` is not a 64-bit integer.*decimal integer text/],
    ['an unsafe number', { id: 2 ** 60 }, /field `id`: .* is beyond ±2\^53.*bigint or as decimal text/],
    ['int64 overflow', { id: '9223372036854775808' }, /field `id`: .* is out of the range of a 64-bit/],
    ['negative uint64', { big: -1 }, /field `big`: -1 is out of the range of a non-negative 64-bit/],
    ['int32 overflow', { risk: 2 ** 31 }, /field `risk`: 2147483648 is out of the range of a 32-bit/],
    ['a nested uint32', { lines: [{}, { qty: -1 }] }, /field `lines\[1\]\.qty`: -1 is out of the range/],
    ['a double as words', { score: 'high' }, /field `score`: `high` is not a number \(`double`\)/],
    ['a bool as text', { flagged: 'yes' }, /field `flagged`: `yes` is not a boolean/],
    ['a string as number', { user: 5 }, /field `user`: 5 is a number, not a string/],
    ['bytes not base64', { raw: 'not base64!' }, /field `raw`: `not base64!` is not bytes/],
    [
      'an unknown enum name',
      { kind: 'CHEQUE' },
      /field `kind`: `CHEQUE` is not a value of enum `shop.Kind` \(UNKNOWN, CARD, CASH\)/,
    ],
    ['a bad time', { at: 'yesterday' }, /field `at`: `yesterday` is not an ISO-8601 time/],
    [
      'a day that does not exist',
      { at: '2023-02-29T00:00:00.000Z' },
      /field `at`: .* is not an ISO-8601 time/,
    ],
    ['a bad duration', { took: '5 minutes' }, /field `took`: `5 minutes` is not a duration/],
    ['a bad decimal', { amount: '12,50' }, /field `amount`: `12,50` is not a decimal number/],
    [
      'a bad nested decimal',
      { lines: [{ price: 'free' }] },
      /field `lines\[0\]\.price`: `free` is not a decimal/,
    ],
    [
      'a scalar for a message',
      { lines: [5] },
      /field `lines\[0\]` is 5, not an object \(message `shop.Line`\)/,
    ],
    ['an object for a repeated field', { lines: {} }, /field `lines`: an object is not an array/],
    ['a map value', { counts: { x: 'many' } }, /field `counts.x`: `many` is not a 64-bit integer/],
    [
      'two members of a oneof',
      { card: '1', iban: '2' },
      /fields `card` and `iban` are both set.*oneof \(`pay`\)/,
    ],
    ['not an object', 'order 1', /the record is `order 1`, not an object \(message `shop.Order`\)/],
  ];
  for (const [what, record, message] of refused)
    test(`refuses ${what}, naming the field`, () => assert.throws(() => encode(record), message));

  test('fields the message does not declare, null and undefined are not written', () => {
    assert.deepEqual(roundTrip({ id: 1, user: null, note: 'x', at: undefined }), roundTrip({ id: 1 }));
  });
});
