/**
 * What a record loses on its way to another thread: `postMessage` copies data, not classes (the
 * structured clone algorithm), so a {@link Decimal} arrives as a plain `{ units, scale }` object
 * and an amount written after a parallel step would come out as `{"units":"110","scale":2}`
 * instead of `1.10`. {@link reviveCloned} gives the decimals back their class on the receiving
 * side. Dates, Maps, Sets, bigints and typed arrays survive a clone as they are.
 */
import { Decimal, MAX_DECIMAL_SCALE } from './decimal.ts';

/**
 * `value` (just received from another thread) with every plain object that is exactly a cloned
 * decimal — two own keys, `units` a bigint and `scale` an integer from 0 to
 * {@link MAX_DECIMAL_SCALE} — made a {@link Decimal} again, at any depth of plain objects, arrays
 * and Map values. Containers are changed in place (a clone belongs to its receiver) and returned.
 * A record of your own with exactly those two fields would become a decimal too: bigint `units`
 * and a `scale` beside nothing else is taken to be one.
 */
export function reviveCloned(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (typeof v === 'object' && v !== null) value[i] = reviveCloned(v);
    }
    return value;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) if (typeof v === 'object' && v !== null) value.set(k, reviveCloned(v));
    return value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const o = value as Record<string, unknown>;
  if (typeof o.units === 'bigint') {
    const decimal = asClonedDecimal(o);
    if (decimal !== undefined) return decimal;
  }
  for (const k in o) {
    const v = o[k];
    if (typeof v === 'object' && v !== null) o[k] = reviveCloned(v);
  }
  return o;
}

function asClonedDecimal(o: Record<string, unknown>): Decimal | undefined {
  const { units, scale } = o;
  if (typeof units !== 'bigint' || typeof scale !== 'number') return undefined;
  if (!Number.isInteger(scale) || scale < 0 || scale > MAX_DECIMAL_SCALE) return undefined;
  let keys = 0;
  for (const _ in o) keys++;
  return keys === 2 ? new Decimal(units, scale) : undefined;
}
