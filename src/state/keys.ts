/**
 * Keys of a `StateBackend` as bytes: stores that order keys by bytes (PostgreSQL `bytea`,
 * Redis sorted sets) hold each key as its UTF-8 encoding, so "ascending byte order" of the
 * contract is the store's own order and a prefix is a byte range.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';

/**
 * The UTF-8 bytes of `key`. Throws a `SLUICE_STAGE` error naming `where` for a string with a
 * lone surrogate, which UTF-8 cannot encode (it would silently become U+FFFD and collide).
 */
export function keyBytes(key: string, where: string): Buffer {
  if (!key.isWellFormed())
    throw new SluiceError(
      ErrorCode.STAGE,
      `state key ${JSON.stringify(key)} in ${where} is not valid Unicode (a lone surrogate); keys must be well-formed strings`,
      { key },
    );
  return Buffer.from(key, 'utf8');
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or undefined when
 * there is none (the prefix is empty or all 0xff): the exclusive upper bound of a prefix range.
 */
export function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return undefined;
  const end = Buffer.from(prefix.subarray(0, n));
  end[n - 1] = (end[n - 1] as number) + 1;
  return end;
}
