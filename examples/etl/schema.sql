-- The example's target table: `psql "$URL" -f examples/etl/schema.sql`. Run it before each load:
-- it empties the table (and forgets the positions an earlier exactly-once run stored), so rows
-- left by an earlier run or by the tests are not taken for duplicates of the new load.
DROP TABLE IF EXISTS etl_transactions;
CREATE TABLE etl_transactions (
  id       bigint PRIMARY KEY,
  account  text NOT NULL,
  amount   numeric(14, 2) NOT NULL CHECK (amount >= 0),
  currency char(3) NOT NULL,
  ts       timestamptz NOT NULL
);
DO $$
BEGIN
  IF to_regclass('sluice_sink_offsets') IS NOT NULL THEN
    DELETE FROM sluice_sink_offsets WHERE pipeline = 'etl-transactions';
  END IF;
END $$;
