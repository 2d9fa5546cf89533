/**
 * Key groups: how keys map to shards so that changing the shard count moves whole groups.
 *
 * A key hashes (murmur3) into one of `maxKeyGroups` key groups, fixed for the life of a
 * pipeline's state. Shard `i` of `n` owns the contiguous range of key groups
 * `[ceil(i·max/n), ceil((i+1)·max/n))` — Flink's assignment — so when `n` changes, state moves
 * as whole key groups and every key of one key group stays together.
 */
import { ErrorCode, SluiceError } from './errors.ts';

/** Default number of key groups: the maximum parallelism a pipeline's state can be rescaled to. */
export const DEFAULT_MAX_KEY_GROUPS = 256;

/** A key as the hash sees it: strings hash as UTF-8, numbers as their decimal string. */
export type Key = string | number | bigint | Uint8Array;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3 x86 32-bit of `bytes`. Why murmur3: it is fast, mixes well (every input bit
 * affects every output bit, so `hash % n` is even), is stable across processes, platforms and
 * languages (Kafka's partitioner uses its sibling murmur2; Flink and Cassandra use murmur3),
 * and fits in 30 lines, so no dependency is needed.
 *
 * @example
 * murmur3(new TextEncoder().encode('hello')); // 0x248bfa47
 */
export function murmur3(bytes: Uint8Array, seed = 0, length = bytes.length): number {
  let h = seed >>> 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (length & 3) {
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the tail bytes fall through by design
    case 3:
      k ^= (bytes[blocks + 2] as number) << 16;
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the tail bytes fall through by design
    case 2:
      k ^= (bytes[blocks + 1] as number) << 8;
    case 1:
      k ^= bytes[blocks] as number;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();
// One scratch buffer reused by every string hash: no allocation per record.
let scratch = new Uint8Array(256);

/**
 * murmur3 of a key: strings as UTF-8 bytes, numbers and bigints as their decimal string, bytes
 * as they are. Stable across runs and processes.
 *
 * @example
 * hashKey('hello') === murmur3(new TextEncoder().encode('hello')); // true
 */
export function hashKey(key: Key): number {
  if (key instanceof Uint8Array) return murmur3(key);
  const s = typeof key === 'string' ? key : String(key);
  // A UTF-16 code unit becomes at most 3 UTF-8 bytes.
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(Math.max(s.length * 3, scratch.length * 2));
  const { written } = encoder.encodeInto(s, scratch);
  return murmur3(scratch, 0, written);
}

function checkMax(maxKeyGroups: number): void {
  if (!Number.isInteger(maxKeyGroups) || maxKeyGroups < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `maxKeyGroups must be a whole number ≥ 1, got ${maxKeyGroups}`);
  }
}

function checkShards(shards: number, maxKeyGroups: number): void {
  checkMax(maxKeyGroups);
  if (!Number.isInteger(shards) || shards < 1 || shards > maxKeyGroups) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `shards must be a whole number from 1 to maxKeyGroups (${maxKeyGroups}), got ${shards}; raise maxKeyGroups for more shards`,
    );
  }
}

/**
 * The key group of `key`: `hashKey(key) mod maxKeyGroups`, in `[0, maxKeyGroups)`. The same
 * key always lands in the same group, in every process, whatever the shard count.
 *
 * @example
 * keyGroupOf('user-42', 256); // a number from 0 to 255, always the same for 'user-42'
 */
export function keyGroupOf(key: Key, maxKeyGroups = DEFAULT_MAX_KEY_GROUPS): number {
  return hashKey(key) % maxKeyGroups;
}

/**
 * The shard that owns `keyGroup` when `shards` shards split `maxKeyGroups` key groups:
 * `floor(keyGroup · shards / maxKeyGroups)`, so each shard owns one contiguous range.
 * Throws a `SLUICE_CONFIG` error for a shard count outside `1..maxKeyGroups`.
 *
 * @example
 * shardOfKeyGroup(0, 4, 256);   // 0
 * shardOfKeyGroup(255, 4, 256); // 3
 */
export function shardOfKeyGroup(
  keyGroup: number,
  shards: number,
  maxKeyGroups = DEFAULT_MAX_KEY_GROUPS,
): number {
  checkShards(shards, maxKeyGroups);
  return Math.floor((keyGroup * shards) / maxKeyGroups);
}

/**
 * The key groups shard `shard` of `shards` owns: `[start, end)`, the exact inverse of
 * {@link shardOfKeyGroup}. Ranges of consecutive shards touch and together cover every group.
 *
 * @example
 * keyGroupRange(1, 4, 256); // { start: 64, end: 128 }
 */
export function keyGroupRange(
  shard: number,
  shards: number,
  maxKeyGroups = DEFAULT_MAX_KEY_GROUPS,
): { start: number; end: number } {
  checkShards(shards, maxKeyGroups);
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `shard must be a whole number from 0 to ${shards - 1}, got ${shard}`,
    );
  }
  // Smallest kg with floor(kg·shards/max) ≥ shard is ceil(shard·max/shards).
  return {
    start: Math.ceil((shard * maxKeyGroups) / shards),
    end: Math.ceil(((shard + 1) * maxKeyGroups) / shards),
  };
}
