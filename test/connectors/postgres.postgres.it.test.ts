/**
 * The `postgres` source and sink run the connector conformance suite against the real server
 * (`npm run services -- up postgres`, which `npm test` runs for this file's name). Every test gets
 * a fresh table, dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { connectorConformance, type TestRecord } from './conformance.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const tables: string[] = [];
let client: pg.Client | undefined;

async function db(): Promise<pg.Client> {
  if (client === undefined) {
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
  }
  return client;
}

/** A fresh table `(id integer, payload text)`, with `id` the primary key when `key`. */
async function table(prefix: string, key: boolean): Promise<string> {
  const name = `${prefix}_${randomUUID().slice(0, 8)}`;
  tables.push(name);
  await (await db()).query(
    `CREATE TABLE ${name} (id integer${key ? ' PRIMARY KEY' : ' NOT NULL'}, payload text)`,
  );
  return name;
}

connectorConformance({
  name: 'postgres',
  source: {
    create: () => table('conf_src', true),
    input: (place) => ({ postgres: { url: PG_URL, table: place, column: 'id', batchSize: 50 } }),
    async write(place, items) {
      const rows = items as readonly TestRecord[];
      if (rows.length === 0) return;
      await (await db()).query(
        `INSERT INTO ${place} (id, payload) SELECT * FROM unnest($1::int[], $2::text[])`,
        [rows.map((r) => r.id), rows.map((r) => r.payload)],
      );
    },
    // README: a checkpoint stores the last row's column value; `restore` resumes right after it.
    delivery: 'exactly-once',
    ends: 'at-end',
    // Without `checkpoint:` a run starts from the first row.
    remembers: false,
    noBadInput: 'a table row always decodes',
  },
  sink: {
    // No unique key: a row written twice would show as a duplicate, not as a rejection.
    create: () => table('conf_sink', false),
    output: (place, { checkpointing }) => ({
      // Exactly-once needs `checkpoint:`; without it the sink is at-least-once.
      postgres: { url: PG_URL, table: place, batchSize: 100, exactlyOnce: checkpointing },
    }),
    async read(place) {
      return (await (await db()).query(`SELECT id, payload FROM ${place} ORDER BY id`)).rows as unknown[];
    },
    async progress(place) {
      return Number((await (await db()).query(`SELECT count(*) FROM ${place}`)).rows[0].count);
    },
    // README: with `exactlyOnce: true` a two-phase commit per checkpoint; a restore settles the
    // prepared transactions to match the checkpoint the sources resume from.
    delivery: 'exactly-once',
    // Not an integer: the server rejects the row (class 22) and the sink sends it to the dlq.
    rejects: { id: 'not-a-number', payload: 'rejected' },
  },
  async cleanup() {
    if (client === undefined) return;
    for (const t of tables) await client.query(`DROP TABLE IF EXISTS ${t}`);
    await client
      .query(`DELETE FROM sluice_sink_offsets WHERE pipeline LIKE 'conf-postgres-%'`)
      .catch(() => {});
    await client.end();
  },
});
