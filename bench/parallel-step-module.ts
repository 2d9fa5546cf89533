/**
 * The CPU-heavy per-record step of `npm run bench -- parallel`: about 10–20 µs of SHA-256 per
 * record on this machine (16 rounds over the record's user and amount), added as `digest`.
 * `mix` costs about as much in plain JavaScript (integer mixing, no native calls): node:crypto's
 * `createHash` costs each thread ~1.27× more CPU when two threads of one process call it at
 * once (bench/README.md, parallel), `mix` does not. `light` does the same record work without
 * either: a run with it measures everything but the step (reading, decoding, encoding,
 * writing, start-up).
 */
import { createHash } from 'node:crypto';

/** Rounds of SHA-256 per record. */
export const ROUNDS = 16;

/** Returns the record with `digest`: the hex of 16 chained SHA-256 rounds. */
export default function score(r: { user: string; amount: string; n: number }): unknown {
  let h = `${r.user}:${r.amount}:${r.n}`;
  for (let i = 0; i < ROUNDS; i++) h = createHash('sha256').update(h).digest('hex');
  return { ...r, digest: h.slice(0, 16) };
}

/** The record with `digest`: 180 rounds of FNV-1a-style mixing over its fields, in hex. */
export function mix(r: { user: string; amount: string; n: number }): unknown {
  const s = `${r.user}:${r.amount}:${r.n}`;
  let h = 2166136261;
  for (let round = 0; round < 180; round++)
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ (s.charCodeAt(i) + round), 16777619);
  return { ...r, digest: (h >>> 0).toString(16).padStart(16, '0') };
}

/** The record with a `digest` of the same length, without hashing. */
export function light(r: { user: string; amount: string; n: number }): unknown {
  return { ...r, digest: `${r.user}:${r.n}`.padEnd(16, '-').slice(0, 16) };
}
