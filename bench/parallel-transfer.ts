/**
 * `node bench/parallel-transfer.ts [BATCH] [--shape wide|bench]`: what one batch costs to hand
 * to another thread, encode plus decode on one thread (the CPU both ends spend): structured
 * clone of the record array (what `postMessage(records)` does), `v8.serialize` into a
 * transferable buffer, JSON in a transferable buffer (`TextEncoder`), and JSON as a string
 * message. `wide`: twelve-field event records (default); `bench`: the four-field records of
 * bench/parallel.ts. Prints µs per batch and per record, medians of 7 rounds.
 */
import { deserialize, serialize } from 'node:v8';

const BATCH = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1024);
const SHAPE = process.argv.includes('bench') ? 'bench' : 'wide';
const ROUNDS = 7;
const ITER = 200;

const wide = (i: number) => ({
  ts: `2026-12-07T12:${String(i % 60).padStart(2, '0')}:00.000Z`,
  user_id: `u${i % 5000}`,
  country: ['DE', 'FR', 'US', 'JP'][i % 4],
  event_type: ['login', 'click', 'buy'][i % 3],
  amount: `${(i * 37) % 10000}.${i % 100}`,
  risk: String(i % 100),
  device: 'android',
  ip: `10.0.${i % 256}.${(i * 7) % 256}`,
  session: `s-${i}-abcdef`,
  ua: 'Mozilla/5.0 (X11; Linux x86_64)',
  ok: i % 2 === 0,
  n: i,
});
// As bench/parallel.ts writes them (and the step's results add `digest`).
const small = (n: number) => ({
  n,
  user: `u${(n * 7919) % 1000}`,
  amount: `${n % 997}.${n % 100}`,
  country: 'DE',
});
const records = Array.from({ length: BATCH }, (_, i) => (SHAPE === 'bench' ? small(i) : wide(i)));

const enc = new TextEncoder();
const dec = new TextDecoder();
const ways: Record<string, () => unknown> = {
  'structured clone': () => structuredClone(records),
  'v8.serialize buffer': () => deserialize(serialize(records)),
  'JSON in buffer': () => JSON.parse(dec.decode(enc.encode(JSON.stringify(records)))),
  'JSON string': () => JSON.parse(structuredClone(JSON.stringify(records))),
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const fn of Object.values(ways)) for (let i = 0; i < 50; i++) fn();
const results: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(ways)) {
    const t = performance.now();
    for (let i = 0; i < ITER; i++) fn();
    const xs = results[name] ?? [];
    xs.push(((performance.now() - t) * 1000) / ITER);
    results[name] = xs;
  }
}
console.log(
  `batch of ${BATCH} ${SHAPE} records, µs per batch (per record), encode + decode, median of ${ROUNDS}`,
);
for (const [name, xs] of Object.entries(results))
  console.log(`${name.padEnd(22)} ${median(xs).toFixed(0).padStart(6)} (${(median(xs) / BATCH).toFixed(2)})`);
