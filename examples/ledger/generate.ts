/**
 * Generates the ledger example's input, `data/transfers.jsonl`: transfers between a few hot
 * accounts, with about one in ten sent again a little later (a client's retry: same id, same
 * content), and {@link reference}, the outcome of applying them one by one in order — what both
 * pipelines must end with. Deterministic: the same arguments give the same bytes.
 *
 * Run: `node examples/ledger/generate.ts [transfers] [accounts] [file]` (default 20000 transfers
 * between 5 accounts, into `examples/ledger/data/transfers.jsonl`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { add, covers, type Money, OPENING_BALANCE, subtract } from './money.ts';

/** One transfer as written to the input. */
export interface TransferLine {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  readonly ts: string;
}

/** A deterministic random number generator (xorshift32): numbers in [0, 1), the same for the same seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** The transfers in input order, retries included (a retry repeats an earlier line up to 40 lines later). */
export function transferLines(count: number, accounts: number, seed = 1): TransferLine[] {
  const rnd = seededRandom(seed);
  const start = Date.parse('2026-01-01T00:00:00Z');
  const out: TransferLine[] = [];
  const retries: { at: number; line: TransferLine }[] = [];
  for (let i = 0; i < count; i++) {
    const from = Math.floor(rnd() * accounts);
    const to = (from + 1 + Math.floor(rnd() * (accounts - 1))) % accounts;
    const line = {
      id: `t${i}`,
      from: `acct-${from}`,
      to: `acct-${to}`,
      amount: 1 + Math.floor(rnd() * 400),
      ts: new Date(start + i * 1000).toISOString(),
    };
    out.push(line);
    if (rnd() < 0.1) retries.push({ at: out.length + 1 + Math.floor(rnd() * 40), line });
    for (
      let r = retries.findIndex((x) => x.at <= out.length);
      r >= 0;
      r = retries.findIndex((x) => x.at <= out.length)
    ) {
      out.push((retries[r] as { line: TransferLine }).line);
      retries.splice(r, 1);
    }
  }
  for (const r of retries) out.push(r.line);
  return out;
}

/** What applying the transfers one by one, each id once, gives. */
export interface Reference {
  /** Applied transfers in order, with both balances after each. */
  readonly applied: { id: string; from_balance: Money; to_balance: Money }[];
  /** Ids of the transfers rejected for insufficient funds. */
  readonly rejected: string[];
  /** Final balance of every account named. */
  readonly balances: Map<string, Money>;
}

/** The sequential outcome of `lines` (see {@link Reference}). */
export function reference(lines: readonly TransferLine[]): Reference {
  const seen = new Set<string>();
  const balances = new Map<string, Money>();
  const applied: Reference['applied'] = [];
  const rejected: string[] = [];
  for (const t of lines) {
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    const amount = BigInt(t.amount);
    const from = balances.get(t.from) ?? OPENING_BALANCE;
    const to = balances.get(t.to) ?? OPENING_BALANCE;
    balances.set(t.from, from);
    balances.set(t.to, to);
    if (!covers(from, amount)) {
      rejected.push(t.id);
      continue;
    }
    balances.set(t.from, subtract(from, amount));
    balances.set(t.to, add(to, amount));
    applied.push({ id: t.id, from_balance: subtract(from, amount), to_balance: add(to, amount) });
  }
  return { applied, rejected, balances };
}

/** Writes `lines` as JSONL to `file`, creating its folder. */
export function writeTransfers(file: string, lines: readonly TransferLine[]): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? 20_000);
  const accounts = Number(process.argv[3] ?? 5);
  const file = process.argv[4] ?? join(dirname(fileURLToPath(import.meta.url)), 'data/transfers.jsonl');
  const lines = transferLines(count, accounts);
  writeTransfers(file, lines);
  console.log(`Wrote ${lines.length} lines (${count} transfers) to ${file}`);
}
