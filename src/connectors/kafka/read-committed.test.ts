import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dropAborted, type FetchedBatch, type FetchedPartition } from './read-committed.ts';

const TXN = 1 << 4;
const CONTROL = 1 << 5;

/** A data batch of one record at `offset`, transactional or not. */
function data(offset: number, producerId: number, transactional = true): FetchedBatch {
  return {
    firstOffset: BigInt(offset),
    producerId: BigInt(producerId),
    attributes: transactional ? TXN : 0,
    records: [{}],
  };
}

/** A commit (type 1) or abort (type 0) marker. */
function marker(offset: number, producerId: number, commit: boolean): FetchedBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(commit ? 1 : 0, 2);
  return {
    firstOffset: BigInt(offset),
    producerId: BigInt(producerId),
    attributes: TXN | CONTROL,
    records: [{ key }],
  };
}

/** The offsets of the batches that still deliver records or are markers (what a reader sees). */
const offsets = (p: FetchedPartition) =>
  (p.records ?? []).filter((b) => b.records.length > 0).map((b) => Number(b.firstOffset));

/**
 * The offset `@platformatic/kafka` fetches next after this response: one past the last batch
 * (records of one record each here), or the offset it asked for when no batch is left.
 */
const nextFetch = (p: FetchedPartition, asked: number) => {
  const last = p.records?.at(-1);
  return last === undefined ? asked : Number(last.firstOffset) + 1;
};

describe('dropAborted', () => {
  test('an aborted transaction whose marker is in a later fetch is dropped up to the end of this one', () => {
    const p: FetchedPartition = {
      abortedTransactions: [{ producerId: 7n, firstOffset: 2n }],
      records: [data(0, 7), marker(1, 7, true), data(2, 7), data(3, 7), data(4, 9, false)],
    };
    dropAborted(p);
    assert.deepEqual(offsets(p), [0, 1, 4]);
    assert.deepEqual(p.abortedTransactions, []);
  });

  test('two aborted transactions of one producer id (a restarted producer) are both dropped', () => {
    const p: FetchedPartition = {
      abortedTransactions: [
        { producerId: 7n, firstOffset: 0n },
        { producerId: 7n, firstOffset: 3n },
      ],
      records: [
        data(0, 7),
        data(1, 7),
        marker(2, 7, false),
        data(3, 7),
        marker(4, 7, false),
        data(5, 7),
        marker(6, 7, true),
      ],
    };
    dropAborted(p);
    assert.deepEqual(offsets(p), [2, 4, 5, 6], 'markers stay, the committed transaction stays');
  });

  test('another producer interleaved with an aborted transaction keeps its records', () => {
    const p: FetchedPartition = {
      abortedTransactions: [{ producerId: 7n, firstOffset: 0n }],
      records: [data(0, 7), data(1, 8), data(2, 7), marker(3, 8, true), marker(4, 7, false), data(5, 7)],
    };
    dropAborted(p);
    assert.deepEqual(offsets(p), [1, 3, 4, 5]);
  });

  test('a response holding only an aborted transaction (its marker in a later fetch) still moves the reader past it', () => {
    // A transaction larger than the fetch size: the old filter removed every batch, the client
    // fetched offset 10 again, forever, and a source with `idleTimeout` ended with it unread.
    const p: FetchedPartition = {
      abortedTransactions: [{ producerId: 7n, firstOffset: 10n }],
      records: [data(10, 7), data(11, 7), data(12, 7)],
    };
    dropAborted(p);
    assert.deepEqual(offsets(p), [], 'no record of the aborted transaction is delivered');
    assert.equal(nextFetch(p, 10), 13, 'the next fetch starts after the aborted batches');
    assert.equal(p.records?.length, 3, 'each batch stays, emptied');
  });

  test('without aborted transactions nothing changes', () => {
    const records = [data(0, 7), marker(1, 7, true)];
    const p: FetchedPartition = { abortedTransactions: null, records };
    dropAborted(p);
    assert.equal(p.records, records);
  });
});
