/** Names of the rolling `file` sink's parts: the template's time fields, `{part}`, and the bad templates. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketOf, partName, partTemplateProblem, stagingDir } from './part-names.ts';

const T = Date.UTC(2026, 11, 7, 9, 5, 30); // 2026-12-07 09:05:30 UTC

describe('partName', () => {
  it('fills the UTC time fields and the part id', () => {
    assert.equal(
      partName('out/%Y-%m-%d/%H%M/part-{part}.jsonl.zst', T, 'ab12-3'),
      'out/2026-12-07/0905/part-ab12-3.jsonl.zst',
    );
  });

  it('writes `%%` as a `%` and every `{part}` of the template', () => {
    assert.equal(partName('out/100%%-{part}-{part}.csv', T, 'x-0'), 'out/100%-x-0-x-0.csv');
  });

  it('pads single digits and uses UTC, not the local zone', () => {
    assert.equal(partName('%Y%m%d%H%M-{part}', Date.UTC(2027, 0, 2, 3, 4), 'p'), '202701020304-p');
  });
});

describe('bucketOf', () => {
  it('is equal within a bucket and differs across its boundary', () => {
    const t = 'out/%Y-%m-%d/%H/p-{part}.jsonl';
    assert.equal(bucketOf(t, T), bucketOf(t, T + 54 * 60_000));
    assert.notEqual(bucketOf(t, T), bucketOf(t, T + 55 * 60_000), 'the next hour is another bucket');
    assert.equal(
      bucketOf('out/p-{part}.jsonl', 0),
      bucketOf('out/p-{part}.jsonl', T),
      'no time field: one bucket',
    );
  });
});

describe('partTemplateProblem', () => {
  it('accepts templates with `{part}` in the file name', () => {
    assert.equal(partTemplateProblem('out/%Y-%m-%d/part-{part}.jsonl.zst'), undefined);
    assert.equal(partTemplateProblem('part-{part}.csv'), undefined);
    assert.equal(partTemplateProblem('out/%%/{part}.jsonl'), undefined);
  });

  it('names a time field it does not know, and a trailing `%`', () => {
    assert.match(
      partTemplateProblem('out/%Y-%j/{part}.jsonl') ?? '',
      /`%j` in `path` is not a time field; use `%Y`/,
    );
    assert.match(partTemplateProblem('out/{part}.jsonl%') ?? '', /`%` in `path` is not a time field/);
  });

  it('asks for `{part}` in the file name, not only in a folder', () => {
    assert.match(partTemplateProblem('out/%Y/events.jsonl') ?? '', /needs `\{part\}` where the part id goes/);
    assert.match(
      partTemplateProblem('out/{part}/events.jsonl') ?? '',
      /the file name in `path` needs `\{part\}`/,
    );
  });

  it('names a placeholder that is not `{part}`', () => {
    assert.match(
      partTemplateProblem('out/part-{n}.jsonl') ?? '',
      /`\{n\}` in `path` is not a placeholder; the part id is `\{part\}`/,
    );
  });
});

describe('stagingDir', () => {
  it('is a hidden folder in the deepest folder without a time field, one per template', () => {
    const a = stagingDir('/data/out/%Y-%m-%d/%H/part-{part}.jsonl');
    assert.match(a, /^\/data\/out\/\.sluice-parts-[0-9a-f]{10}$/);
    assert.notEqual(a, stagingDir('/data/out/%Y-%m-%d/%H/other-{part}.jsonl'));
    assert.match(stagingDir('/data/out/part-{part}.jsonl'), /^\/data\/out\/\.sluice-parts-/);
    assert.match(stagingDir('part-{part}.jsonl'), /^\.sluice-parts-/);
  });
});
