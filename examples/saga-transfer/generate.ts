/**
 * Generates the saga-transfer example's input, `data/transfers.jsonl`: transfers `{ id, from, to,
 * amount }` between five open accounts, amounts exact decimals with two places (`"123.45"`), about
 * one in fifteen to the closed account `acct-closed` and one in forty to an account that does not
 * exist — both make the `credit` step fail, so the saga compensates the debit. Deterministic.
 *
 * Run: `npx node examples/saga-transfer/generate.ts [transfers] [file]` (default 2000 transfers into
 * `examples/saga-transfer/data/transfers.jsonl`). `npx node` runs the project's Node 24.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../ledger/generate.ts';

/** One transfer as written to the input. */
export interface Transfer {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  /** Exact decimal text with two places. */
  readonly amount: string;
}

/** The open accounts of `schema.sql`, each opening with {@link OPENING_CENTS}. */
export const ACCOUNTS = ['acct-0', 'acct-1', 'acct-2', 'acct-3', 'acct-4'] as const;
/** 1000.00 in cents. */
export const OPENING_CENTS = 100_000n;

/** `count` transfers, the same for the same seed. */
export function transfers(count: number, seed = 7): Transfer[] {
  const rnd = seededRandom(seed);
  const out: Transfer[] = [];
  for (let i = 0; i < count; i++) {
    const f = Math.floor(rnd() * ACCOUNTS.length);
    const r = rnd();
    const to =
      r < 1 / 15
        ? 'acct-closed'
        : r < 1 / 15 + 1 / 40
          ? 'acct-missing'
          : ACCOUNTS[(f + 1 + Math.floor(rnd() * (ACCOUNTS.length - 1))) % ACCOUNTS.length];
    const cents = 1 + Math.floor(rnd() * 30_000);
    out.push({
      id: `s${i}`,
      from: ACCOUNTS[f] as string,
      to: to as string,
      amount: centsText(BigInt(cents)),
    });
  }
  return out;
}

/** `12345n` → `"123.45"`. */
export function centsText(cents: bigint): string {
  const sign = cents < 0n ? '-' : '';
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

/** `"123.45"` → `12345n`. */
export function textCents(text: string): bigint {
  const [whole, frac = ''] = text.split('.');
  const neg = (whole as string).startsWith('-');
  const units =
    BigInt((whole as string).replace('-', '')) * 100n + BigInt(frac.padEnd(2, '0').slice(0, 2) || '0');
  return neg ? -units : units;
}

/** Writes `lines` as JSONL (amounts as JSON strings, read exactly with `decimals: [amount]`). */
export function writeTransfers(file: string, lines: readonly Transfer[]): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? 2000);
  const file = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), 'data/transfers.jsonl');
  writeTransfers(file, transfers(count));
  console.log(`Wrote ${count} transfers to ${file}`);
}
