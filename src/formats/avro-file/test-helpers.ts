/** Test data of the Avro file tests (not part of the public API). */

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
