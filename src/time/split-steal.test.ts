import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { lineEndIn, OwnedRange, RangeTable, type SteppedJob } from './split-steal.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-steal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Line ends every 10 bytes: a line end is found at the next multiple of 10. */
const tens = (offset: number) => Math.ceil(offset / 10) * 10;

/** A job that records what it was asked to do. */
function recorder(): SteppedJob & { steps: number[]; ends: number[]; at: number; to: number } {
  return {
    steps: [],
    ends: [],
    at: 0,
    to: 1000,
    step(maxBytes) {
      this.steps.push(maxBytes);
      this.at += maxBytes;
      return this.at >= this.to;
    },
    shorten(to) {
      this.ends.push(to);
      this.to = to;
    },
  };
}

describe('RangeTable', () => {
  it('hands a thief the second half of what is left past the reservation, at a line end', () => {
    const table = RangeTable.create(1000);
    const owner = new OwnedRange(table, 0, recorder(), 0, 1000);
    owner.step(100); // reserved 0–100
    const s = table.steal(50, tens);
    assert.deepEqual(s, { range: 1, from: 550, to: 1000, last: true });
    // The owner's next slice stops at the new end, and its job is told.
    const job = recorder();
    const again = new OwnedRange(table, 0, job, 100, 1000);
    for (let k = 0; k < 20 && !again.step(100); k++);
    assert.deepEqual(job.ends, [550]);
    assert.equal(
      job.steps.reduce((a, b) => a + b, 0),
      450,
    );
  });

  it('takes from the running range with the most left, and nothing under `least`', () => {
    const table = RangeTable.create(1000);
    new OwnedRange(table, 0, recorder(), 0, 1000).step(400); // 600 left
    const first = table.steal(50, tens);
    assert.equal(first?.from, 700); // 400 + 600 / 2
    const second = table.steal(50, tens);
    assert.equal(second?.from, 550, 'range 0 still has the most left (400–700)');
    assert.equal(second?.last, false, 'range 0 no longer ends the file');
    assert.equal(table.steal(1000, tens), undefined);
    assert.equal(table.made(), 3);
  });

  it('takes nothing when the line end past the middle is the end, nor once stopped', () => {
    const table = RangeTable.create(1000);
    new OwnedRange(table, 0, recorder(), 0, 1000).step(990);
    assert.equal(table.steal(1, tens), undefined, 'the line end past the middle of 990–1000 is the end');
    const other = RangeTable.create(1000);
    other.stop();
    assert.equal(other.steal(1, tens), undefined);
    assert.ok(other.stopped());
  });

  it('does not take a part the owner reserved while the thief looked for a line end', () => {
    const table = RangeTable.create(1000);
    const owner = new OwnedRange(table, 0, recorder(), 0, 1000);
    let raced = false;
    const s = table.steal(50, (offset) => {
      // The owner reserves past the cut the thief is about to make (once; the retry sees it).
      if (!raced) {
        raced = true;
        owner.step(800);
      }
      return tens(offset);
    });
    assert.equal(s?.from, 900, 'retried from the new reservation: 800 + 200 / 2');
  });

  it('does not take from a finished range', () => {
    const table = RangeTable.create(1000);
    table.finish(0);
    assert.equal(table.steal(1, tens), undefined);
  });

  it('is shared with another thread through its buffer', () => {
    const table = RangeTable.create(1000);
    const there = new RangeTable(table.buffer);
    assert.equal(there.steal(50, tens)?.from, 500);
    assert.equal(table.made(), 2);
  });
});

describe('lineEndIn', () => {
  it('finds the offset after the first line end at or after offset − 1', () => {
    const path = join(dir, 'lines.txt');
    writeFileSync(path, `abc\n${'x'.repeat(100_000)}\nend`);
    const lineEnd = lineEndIn(path);
    assert.equal(lineEnd(0), 4);
    assert.equal(lineEnd(4), 4, 'a line ends just before 4');
    assert.equal(lineEnd(5), 100_005, 'past a probe of 64 KiB');
    assert.equal(lineEnd(100_006), undefined, 'no line end after');
  });
});
