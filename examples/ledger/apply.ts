/**
 * The `serial` step of the ledger (`pipeline.yaml`): applies one transfer to the balances of its
 * two accounts, held as `serial`'s value per key. `serial` runs it after every earlier transfer of
 * either account, so the check and the update see one consistent balance; an overdraft (or a bad
 * amount) goes to the `rejected` output with the reason, and nothing changes.
 */
import type { SerialContext } from '../../src/index.ts';
import { add, covers, isPositive, type Money, OPENING_BALANCE, parseAmount, subtract } from './money.ts';

/** A transfer as read from the input. */
export interface Transfer {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: unknown;
  readonly ts: string;
}

/** A row of `ledger_entries`: the transfer and both balances after it. */
export interface Entry {
  readonly id: string;
  readonly from_account: string;
  readonly to_account: string;
  readonly amount: Money;
  readonly from_balance: Money;
  readonly to_balance: Money;
  readonly ts: string;
}

export default function apply(t: Transfer, state: SerialContext<Money>): Entry | undefined {
  const amount = parseAmount(t.amount);
  if (amount === undefined || !isPositive(amount) || t.from === t.to) {
    state.emit(
      {
        ...t,
        reason: 'not a transfer: the amount must be a positive whole number of cents between two accounts',
      },
      'rejected',
    );
    return undefined;
  }
  const from = state.get(t.from) ?? OPENING_BALANCE;
  if (!covers(from, amount)) {
    state.emit({ ...t, reason: `insufficient funds: balance ${from}, amount ${amount}` }, 'rejected');
    return undefined;
  }
  const fromAfter = subtract(from, amount);
  const toAfter = add(state.get(t.to) ?? OPENING_BALANCE, amount);
  state.set(fromAfter, t.from);
  state.set(toAfter, t.to);
  return {
    id: t.id,
    from_account: t.from,
    to_account: t.to,
    amount,
    from_balance: fromAfter,
    to_balance: toAfter,
    ts: t.ts,
  };
}
