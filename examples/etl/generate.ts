/**
 * Generates the example's input, `data/transactions.csv.gz`: a gzip CSV of card transactions
 * (`id,account,amount,currency,ts`) with a few bad rows mixed in on purpose — an amount that is
 * not a number, a timestamp that is not one (both rejected by the CSV reader's `types`), a
 * negative amount (rejected by the table's CHECK constraint) and a repeated id (rejected by its
 * primary key). Deterministic: the same row count gives the same bytes.
 *
 * Run: `npx node examples/etl/generate.ts [rows] [file]` (default 200000 rows into
 * `examples/etl/data/transactions.csv.gz`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Why a generated row must end in the dead-letter output, or `ok`. */
export type RowKind = 'ok' | 'badAmount' | 'badTime' | 'negative' | 'duplicate';

/** One generated row: its CSV line and what the pipeline must make of it. */
export interface GeneratedRow {
  /** Line number in the file (the header is line 1). */
  readonly line: number;
  readonly id: number;
  readonly kind: RowKind;
  /** The CSV line, without its newline. */
  readonly text: string;
  /** For `ok` rows: the table row the pipeline must write (amount and ts as PostgreSQL prints them). */
  readonly expected?: { id: number; account: string; amount: string; currency: string; ts: string };
}

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF'];
const START = Date.UTC(2026, 0, 1);

/**
 * The rows of a file of `n` transactions, in order.
 *
 * @example
 * [...transactionRows(3)].map((r) => r.text); // ['1,acct-1,79.19,USD,…', …]
 */
export function* transactionRows(n: number): Generator<GeneratedRow> {
  for (let i = 1; i <= n; i++) {
    const cents = (i * 7919) % 1_000_000;
    let amount = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
    let ts = new Date(START + i * 1000 + (i % 1000)).toISOString();
    let id = i;
    let kind: RowKind = 'ok';
    if (i % 997 === 0) {
      kind = 'badAmount';
      amount = 'n/a';
    } else if (i % 1009 === 0) {
      kind = 'badTime';
      ts = 'yesterday';
    } else if (i % 1013 === 0) {
      kind = 'negative';
      amount = `-${amount}`;
    } else if (i % 1019 === 0 && (i - 1) % 997 !== 0 && (i - 1) % 1009 !== 0 && (i - 1) % 1013 !== 0) {
      // A repeat of the previous id, which is itself a good row (so it is the one kept).
      kind = 'duplicate';
      id = i - 1;
    }
    const account = `acct-${i % 1000}`;
    const currency = CURRENCIES[i % CURRENCIES.length] as string;
    const text = `${id},${account},${amount},${currency},${ts}`;
    yield {
      line: i + 1,
      id,
      kind,
      text,
      ...(kind === 'ok' ? { expected: { id, account: `${account}:${currency}`, amount, currency, ts } } : {}),
    };
  }
}

/** Writes `n` transactions as a gzip CSV with a header to `file`. */
export function writeTransactions(file: string, n: number): void {
  const lines = ['id,account,amount,currency,ts'];
  for (const r of transactionRows(n)) lines.push(r.text);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, gzipSync(`${lines.join('\n')}\n`, { level: 6 }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 200_000);
  const file =
    process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), 'data', 'transactions.csv.gz');
  writeTransactions(file, n);
  process.stdout.write(`Wrote ${n} transactions to ${file}\n`);
}
