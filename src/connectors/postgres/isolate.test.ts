import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PgError } from '../../clients/postgres.ts';
import {
  culprit,
  type IsolationTarget,
  isRowError,
  MANY_FAILURES,
  rejectedRowError,
  writeIsolating,
} from './isolate.ts';

/**
 * A fake transaction whose rows are numbers: writing a set that holds a bad row fails like the
 * server (SQLSTATE 23505), naming the row's COPY line when `names` says so; savepoints are
 * tracked so the test can check that every rejection was rolled back and what was kept.
 */
function fakeTarget(bad: ReadonlySet<number>, names: boolean) {
  const committed: number[] = [];
  const rejected: number[] = [];
  const statements: string[] = [];
  let pending: number[] = [];
  let writes = 0;
  const target: IsolationTarget<number> = {
    columnsPerRow: 3,
    async exec(sql) {
      statements.push(sql);
      if (sql.startsWith('SAVEPOINT')) pending = [];
      else if (sql.startsWith('RELEASE')) committed.push(...pending);
      else if (sql.startsWith('ROLLBACK')) pending = [];
    },
    async write(rows) {
      writes++;
      const at = rows.findIndex((r) => bad.has(r));
      if (at >= 0) {
        const err = new Error('duplicate key value violates unique constraint') as PgError;
        err.code = '23505';
        if (names) err.where = `COPY t, line ${at + 1}`;
        throw err;
      }
      pending = [...rows];
    },
    reject(row) {
      rejected.push(row);
    },
  };
  return { target, committed, rejected, statements, writes: () => writes };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('rejected-row isolation', () => {
  it('writes a clean chunk once, in one savepoint', async () => {
    const f = fakeTarget(new Set(), true);
    const rows = range(10);
    const ok = await writeIsolating(f.target, rows);
    assert.equal(ok, rows, 'the same array when every row went in');
    assert.deepEqual(f.statements, ['SAVEPOINT sluice_rows', 'RELEASE SAVEPOINT sluice_rows']);
    assert.equal(f.writes(), 1);
  });

  it('takes the culprit from the error and writes the rows around it again', async () => {
    const f = fakeTarget(new Set([3, 7]), true);
    const ok = await writeIsolating(f.target, range(10));
    assert.deepEqual(f.rejected, [3, 7]);
    assert.deepEqual(ok, [0, 1, 2, 4, 5, 6, 8, 9]);
    assert.deepEqual(f.committed, ok, 'what the transaction kept is what was returned');
  });

  it('bisects when the error names no row', async () => {
    const f = fakeTarget(new Set([5, 6, 31]), false);
    const ok = await writeIsolating(f.target, range(32));
    assert.deepEqual(f.rejected, [5, 6, 31]);
    assert.deepEqual(
      ok,
      range(32).filter((i) => ![5, 6, 31].includes(i)),
    );
    assert.deepEqual(
      [...f.committed].sort((a, b) => a - b),
      ok,
    );
    assert.ok(f.writes() < 32, `bisection needs fewer writes than row by row (${f.writes()})`);
  });

  it(`goes row by row after ${MANY_FAILURES} rejections in one chunk`, async () => {
    const bad = new Set(range(40).filter((i) => i % 2 === 0));
    const f = fakeTarget(bad, true);
    const ok = await writeIsolating(f.target, range(40));
    assert.deepEqual(f.rejected, [...bad]);
    assert.deepEqual(
      ok,
      range(40).filter((i) => i % 2 === 1),
    );
    // Once row by row, each remaining row is one write of its own.
    assert.ok(f.writes() <= 40 + MANY_FAILURES + 1, `writes: ${f.writes()}`);
  });

  it('throws a failure that is not a row error (a lost connection) as it is', async () => {
    const f = fakeTarget(new Set(), true);
    const lost = Object.assign(new Error('Connection terminated'), { code: 'ECONNRESET' });
    f.target.write = async () => {
      throw lost;
    };
    await assert.rejects(writeIsolating(f.target, range(3)), (err) => err === lost);
    assert.deepEqual(f.rejected, []);
  });
});

describe('culprit and errors', () => {
  it('maps a COPY line or an INSERT parameter to its row', () => {
    const err = (where: string) => Object.assign(new Error('x'), { where }) as PgError;
    assert.equal(culprit(err('COPY t, line 4, column amount: "abc"'), 10, 3), 3);
    assert.equal(culprit(err('COPY t, line 11'), 10, 3), undefined, 'outside the chunk');
    assert.equal(culprit(err("unnamed portal parameter $7 = '…'"), 10, 3), 2);
    assert.equal(culprit(err('SQL statement'), 10, 3), undefined);
  });

  it('classes 22 and 23 blame one row; others do not', () => {
    assert.equal(isRowError({ code: '22P02' }), true);
    assert.equal(isRowError({ code: '23505' }), true);
    assert.equal(isRowError({ code: '08006' }), false);
    assert.equal(isRowError(new Error('x')), false);
  });

  it('a dead letter names the table, the position, the column and what to do', () => {
    const err = Object.assign(new Error('invalid input syntax for type numeric: "abc"'), {
      code: '22P02',
      where: 'COPY t, line 2, column amount: "abc"',
    }) as PgError;
    const e = rejectedRowError('table `t` at postgres://h/db', 't', err, {
      source: 's',
      position: { line: 9 },
    });
    assert.match(
      e.message,
      /^table `t` at postgres:\/\/h\/db rejected a row \(from \{"line":9\}\), column `amount`: invalid input/,
    );
    assert.match(e.message, /fix the record upstream/);
    assert.equal(e.context.sqlState, '22P02');
    assert.equal(e.context.field, 'amount');
  });
});
