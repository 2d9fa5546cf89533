/**
 * `node bench/parallel-transfer.ts`: what one batch costs to hand to another thread, encode
 * plus decode on one thread (the CPU both ends spend): structured clone of the record array
 * (what `postMessage(records)` does), `v8.serialize` into a transferable buffer, JSON in a
 * transferable buffer (`TextEncoder`), and JSON as a string message. Prints µs per batch,
 * medians of 7 rounds.
 */
import { deserialize, serialize } from 'node:v8';

const BATCH = Number(process.argv[2] ?? 1024);
const ROUNDS = 7;
const ITER = 200;

const records = Array.from({ length: BATCH }, (_, i) => ({
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
}));

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
console.log(`batch of ${BATCH} records (12 fields), µs per batch, encode + decode, median of ${ROUNDS}`);
for (const [name, xs] of Object.entries(results)) console.log(`${name.padEnd(22)} ${median(xs).toFixed(0)}`);
