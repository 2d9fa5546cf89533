-- The example's target table: `psql "$URL" -f examples/etl/schema.sql`.
CREATE TABLE IF NOT EXISTS etl_transactions (
  id       bigint PRIMARY KEY,
  account  text NOT NULL,
  amount   numeric(14, 2) NOT NULL CHECK (amount >= 0),
  currency char(3) NOT NULL,
  ts       timestamptz NOT NULL
);
