/**
 * The example's money arithmetic, in one place: amounts are integer minor units (cents) held as
 * bigint, read from a JSON number that is a safe integer or a string of digits. Swap this file for
 * a decimal type to handle fractional amounts; nothing else in the example does arithmetic.
 */

/** Minor units. */
export type Money = bigint;

/** The balance an account opens with, the first time a transfer names it. */
export const OPENING_BALANCE: Money = 1000n;

/** An amount from a record field, or undefined when it is not a whole number of minor units. */
export function parseAmount(v: unknown): Money | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,30}$/.test(v)) return BigInt(v);
  return undefined;
}

export const add = (a: Money, b: Money): Money => a + b;
export const subtract = (a: Money, b: Money): Money => a - b;
export const covers = (balance: Money, amount: Money): boolean => balance >= amount;
export const isPositive = (amount: Money): boolean => amount > 0n;
