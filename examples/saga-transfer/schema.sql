-- Tables of the saga-transfer example (`psql … -f examples/saga-transfer/schema.sql`).
-- Balances are exact decimals; the CHECK makes an overdraft fail the debit step.
DROP TABLE IF EXISTS saga_accounts;
CREATE TABLE saga_accounts (
  id      text PRIMARY KEY,
  balance numeric(14, 2) NOT NULL CHECK (balance >= 0),
  open    boolean NOT NULL DEFAULT true     -- a closed account cannot be credited
);
INSERT INTO saga_accounts (id, balance, open) VALUES
  ('acct-0', 1000.00, true), ('acct-1', 1000.00, true), ('acct-2', 1000.00, true),
  ('acct-3', 1000.00, true), ('acct-4', 1000.00, true), ('acct-closed', 0.00, false);

-- The saga's idempotency keys (`<id>:debit`, `<id>:credit`, `<id>:debit:compensate`): a step's
-- statement commits together with its key, so a step run again does nothing. Emptied here so
-- that a fresh run of the example starts clean.
DROP TABLE IF EXISTS saga_transfer_calls;
CREATE TABLE saga_transfer_calls (key text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
