import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SinkConnection } from './connection.ts';
import { columnInfo } from './encode.ts';
import type { Row } from './rows.ts';
import { lastPerKey, UpsertWriter } from './upsert-writer.ts';

describe('upsert writer', () => {
  it('keeps the last row of each key, in order', () => {
    const rows = ['a', 'b', 'a', 'c', 'b'].map((key, i) => ({ record: i, meta: undefined, key }) as Row);
    assert.deepEqual(
      lastPerKey(rows).map((r) => r.record),
      [2, 3, 4],
    );
    const distinct = rows.slice(0, 2);
    assert.equal(lastPerKey(distinct), distinct, 'the same array when no key repeats');
  });

  it('sends chunks of batchSize rows as one multi-row INSERT … ON CONFLICT each, in a savepoint', async () => {
    const sent: { sql: string; values?: unknown[] }[] = [];
    const conn = {
      async query(sql: string, values?: unknown[]) {
        sent.push({ sql, values });
        return { rowCount: 0, rows: [] };
      },
    } as unknown as SinkConnection;
    const shape = {
      columns: [columnInfo('id', 'int4'), columnInfo('n', 'text')],
      copySql: '',
      insertHead: 'INSERT INTO t (id, n) VALUES ',
      upsertTail: ' ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n',
    };
    const dead: unknown[] = [];
    const writer = new UpsertWriter({ conn, shape, reject: () => {} }, ['id'], 2);
    writer.add([{ id: 1, n: 'a' }, 'not an object', { id: 2, n: 'b' }, { id: 1, n: 'c' }], undefined, (r) =>
      dead.push(r),
    );
    assert.deepEqual(dead, ['not an object']);
    assert.equal(writer.buffered, 3);
    const chunks = writer.takeChunks();
    assert.equal(writer.buffered, 0);
    assert.equal(chunks.length, 2);
    const held = [];
    for (const chunk of chunks) held.push(await chunk());
    assert.deepEqual(
      held.map((h) => h.count),
      [2, 1],
    );
    const inserts = sent.filter((s) => s.sql.startsWith('INSERT'));
    assert.deepEqual(
      inserts.map((s) => s.sql),
      [
        'INSERT INTO t (id, n) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n',
        'INSERT INTO t (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n',
      ],
    );
    assert.deepEqual(inserts[1]?.values, ['1', 'c']);
    assert.equal(sent.filter((s) => s.sql.startsWith('SAVEPOINT')).length, 2);
  });
});
