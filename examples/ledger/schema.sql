-- Tables of the ledger example (`psql … -f examples/ledger/schema.sql`).

-- pipeline.yaml: balances in Sluice's checkpointed state; each applied transfer lands here once.
DROP TABLE IF EXISTS ledger_entries;
CREATE TABLE ledger_entries (
  id           text PRIMARY KEY,          -- a transfer applied twice would be refused
  from_account text NOT NULL,
  to_account   text NOT NULL,
  amount       bigint NOT NULL CHECK (amount > 0),
  from_balance bigint NOT NULL CHECK (from_balance >= 0),
  to_balance   bigint NOT NULL CHECK (to_balance >= 0),
  ts           timestamptz NOT NULL
);

-- pipeline-db.yaml: balances held in the database, changed by `ledger_apply` per transfer.
DROP TABLE IF EXISTS ledger_accounts;
CREATE TABLE ledger_accounts (
  id      text PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0)
);
DROP TABLE IF EXISTS ledger_transfers;
CREATE TABLE ledger_transfers (
  id     text PRIMARY KEY,                 -- the idempotency key: a transfer runs once
  status text NOT NULL,                    -- applied | rejected
  reason text
);

-- Applies one transfer: idempotent on `id`, both accounts locked (in id order, so two writers
-- never deadlock) before the balance is checked, the overdraft recorded instead of applied.
CREATE OR REPLACE FUNCTION ledger_apply(p_id text, p_from text, p_to text, p_amount bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_balance bigint;
BEGIN
  INSERT INTO ledger_transfers (id, status) VALUES (p_id, 'applying') ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN 'duplicate';
  END IF;
  IF p_amount IS NULL OR p_amount <= 0 OR p_from = p_to THEN
    UPDATE ledger_transfers SET status = 'rejected', reason = 'not a transfer' WHERE id = p_id;
    RETURN 'rejected';
  END IF;
  INSERT INTO ledger_accounts (id, balance) VALUES (p_from, 1000), (p_to, 1000) ON CONFLICT (id) DO NOTHING;
  PERFORM 1 FROM ledger_accounts WHERE id IN (p_from, p_to) ORDER BY id FOR UPDATE;
  SELECT balance INTO v_balance FROM ledger_accounts WHERE id = p_from;
  IF v_balance < p_amount THEN
    UPDATE ledger_transfers SET status = 'rejected',
           reason = format('insufficient funds: balance %s, amount %s', v_balance, p_amount)
     WHERE id = p_id;
    RETURN 'rejected';
  END IF;
  UPDATE ledger_accounts SET balance = balance - p_amount WHERE id = p_from;
  UPDATE ledger_accounts SET balance = balance + p_amount WHERE id = p_to;
  UPDATE ledger_transfers SET status = 'applied' WHERE id = p_id;
  RETURN 'applied';
END $$;
