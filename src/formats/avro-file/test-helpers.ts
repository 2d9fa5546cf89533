/** Test data of the Avro file tests (not part of the public API). */
import { Decimal } from '../../core/decimal.ts';

/**
 * A `shop.Payment` record schema: a long id, a string user, a decimal amount (scale 2) and a
 * timestamp-millis `ts`, plus `extra` fields.
 *
 * @example
 * const schema = paymentSchema({ name: 'note', type: ['null', 'string'], default: null });
 */
export function paymentSchema(...extra: object[]): {
  type: 'record';
  name: string;
  namespace: string;
  fields: object[];
} {
  return {
    type: 'record',
    name: 'Payment',
    namespace: 'shop',
    fields: [
      { name: 'id', type: 'long' },
      { name: 'user', type: 'string' },
      { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } },
      { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
      ...extra,
    ],
  };
}

/**
 * A decoded Avro value as plain data to compare: avsc's record instances as plain objects and
 * decimals (`Decimal`) as their exact text, the form JSON writers give them.
 */
export function plainValue(v: unknown): unknown {
  if (Decimal.is(v)) return v.toString();
  if (Array.isArray(v)) return v.map(plainValue);
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plainValue(x);
  return out;
}
