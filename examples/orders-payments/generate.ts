/**
 * Writes data/orders.jsonl and data/payments.jsonl for pipeline.yaml: `count` orders (default
 * 2,000) two seconds apart, up to 8 s out of order; payments from 4 minutes before to 2 minutes
 * after their order (those after 1 minute do not match), none for every third order, two for
 * every seventh; and at the end of each file a few records an hour old (late).
 *
 * Usage: `node examples/orders-payments/generate.ts [count] [folder]`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An order or a payment as the files hold them. */
export interface JoinEvent {
  readonly orderId: string;
  readonly ts: number;
  readonly [field: string]: unknown;
}

const T0 = Date.UTC(2024, 0, 1);
const OFFSETS = [-240_000, -60_000, 0, 30_000, 59_000, 120_000];

/** The orders and payments of the example, as written by {@link writeOrdersPayments}. */
export function ordersPayments(count: number): { orders: JoinEvent[]; payments: JoinEvent[] } {
  const orders: JoinEvent[] = [];
  const payments: JoinEvent[] = [];
  for (let i = 0; i < count; i++) {
    const ts = T0 + i * 2000 - ((i * 7919) % 5) * 2000;
    orders.push({ orderId: `o${i}`, ts, amount: (i % 97) + 1 });
    if (i % 3 === 2) continue;
    payments.push({ orderId: `o${i}`, ts: ts + (OFFSETS[i % OFFSETS.length] as number), method: 'card' });
    if (i % 7 === 0) payments.push({ orderId: `o${i}`, ts: ts + 10_000, method: 'voucher' });
  }
  // Payments in time order, up to 8 s out of order (within maxOutOfOrder).
  payments.sort((a, b) => a.ts - b.ts);
  for (let i = 1; i < payments.length; i += 5) {
    const a = payments[i - 1] as JoinEvent;
    const b = payments[i] as JoinEvent;
    if (b.ts - a.ts < 8000) [payments[i - 1], payments[i]] = [b, a];
  }
  // An hour behind the end: late.
  const end = T0 + count * 2000;
  for (let j = 0; j < 5; j++) {
    orders.push({ orderId: `late${j}`, ts: end - 3_600_000 + j, amount: 1 });
    payments.push({ orderId: `o${j}`, ts: end - 3_600_000 + j, method: 'late' });
  }
  return { orders, payments };
}

/** Writes the example's two input files into `dir`/data. */
export function writeOrdersPayments(
  dir: string,
  count: number,
): { orders: JoinEvent[]; payments: JoinEvent[] } {
  const data = ordersPayments(count);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const jsonl = (rows: JoinEvent[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  writeFileSync(join(dir, 'data', 'orders.jsonl'), jsonl(data.orders));
  writeFileSync(join(dir, 'data', 'payments.jsonl'), jsonl(data.payments));
  return data;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? 2000);
  const dir = process.argv[3] ?? dirname(fileURLToPath(import.meta.url));
  const { orders, payments } = writeOrdersPayments(dir, count);
  console.log(`Wrote ${orders.length} orders and ${payments.length} payments to ${join(dir, 'data')}`);
}
