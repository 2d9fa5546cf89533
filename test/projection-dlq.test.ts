/**
 * Projection and dead letters: a file source feeding a window decodes only the fields the window
 * reads even when the pipeline has a dlq, and every dead letter — of the decoder (undecodable
 * row), the window (bad time, late event, a value an aggregate cannot take) and of steps around
 * it (a map before it, a map after it, a CEL filter before it, which keeps the projection) —
 * holds exactly what it holds with projection off (oracle: the same run with the source's
 * `project` hidden), and the letters name their records' lines.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { fileSource } from '../src/connectors/file/source.ts';
import { collect } from '../src/connectors/file/test-helpers.ts';
import { ManualClock } from '../src/core/clock.ts';
import type { DeadLetter, Operator, Source, StageContext } from '../src/core/stage.ts';
import { CelFilter } from '../src/expr/cel-operators.ts';
import { Pipeline } from '../src/pipeline.ts';
import { windowOperator } from '../src/time/window.ts';

const HEADER = 'id,ts,country,amount,note';
const T0 = Date.UTC(2026, 0, 1);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
/** Rows as [id, ts, country, amount, note]; `bad` marks the ones some stage rejects. */
const ROWS: (string | number)[][] = [
  [1, at(0), 'FR', '1.50', 'first'],
  [2, 'not-a-time', 'DE', '2', 'bad time'],
  [3, at(1), 'FR', 'abc', 'bad amount'],
  [4, at(600), 'DE', '3', 'moves the watermark'],
  [5, at(2), 'FR', '4', 'late'],
  [6, at(601), 'FR', '5', 'boom'],
  [7, at(602), 'DE', '6', 'last'],
];

function csvText(): string {
  const lines = ROWS.map((r) => r.join(','));
  lines.splice(2, 0, `8,${at(3)},FR,1,x,extra`); // one field too many: undecodable
  return `${[HEADER, ...lines].join('\n')}\n`;
}

function jsonlText(): string {
  const keys = HEADER.split(',');
  const lines = ROWS.map((r) => JSON.stringify(Object.fromEntries(keys.map((k, i) => [k, r[i]]))));
  lines.splice(2, 0, '{"id": 8, "ts": ');
  return `${lines.join('\n')}\n`;
}

/** A map that rejects the record whose `note` is `boom` (after the window: the first result of key DE). */
function failing(before: boolean): Operator {
  let ctx: StageContext | undefined;
  return {
    open(c) {
      ctx = c;
    },
    async process(b, out) {
      const keep: unknown[] = [];
      b.records.forEach((r, i) => {
        const rec = r as Record<string, unknown>;
        if (before ? rec.note === 'boom' : rec.country === 'DE' && rec.revision === 1 && keep.length === 0)
          ctx?.deadLetter(r, new Error('map failed'), b.meta?.[i]);
        else keep.push(r);
      });
      await out.emit({ kind: 'batch', records: keep });
    },
  };
}

type Case = { mapBefore?: boolean; mapAfter?: boolean; celBefore?: boolean };

/**
 * Drops the record whose note is `first`, fails on the one whose note is `last` (an int divided
 * by zero), keeps the rest: the window behind it gets a subset of the source's first batch, whose
 * meta nothing has built (the window's bad-time letter is of its second record).
 */
const CEL_BEFORE = 'note != "first" && 10 / (note == "last" ? 0 : 1) > 0';

/** Dead letters in one order, whatever order the stages sent them in. */
function inOrder(letters: readonly DeadLetter[]): DeadLetter[] {
  const key = (l: DeadLetter) => JSON.stringify(l);
  return [...letters].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Runs file → [map] → window → [map] → out with a dlq; `project: false` hides the source's projection. */
async function run(path: string, format: 'csv' | 'jsonl', c: Case, project: boolean) {
  const src = fileSource({ path, format, batchSize: 2 });
  const source: Source = project ? src : ({ ...src, project: undefined } as Source);
  const out = collect();
  const dead = collect<DeadLetter>();
  const p = new Pipeline('t');
  let s = p.from(source, { name: 'input' });
  if (c.mapBefore === true) s = s.via(failing(true), { name: 'before' });
  if (c.celBefore === true) s = s.via(new CelFilter(CEL_BEFORE), { name: 'cel' });
  s = s.via(
    windowOperator({
      key: ['country'],
      time: 'ts',
      tumbling: '1m',
      watermark: { maxOutOfOrder: '1s' },
      aggregate: { count: 'count()', amount: 'sum(amount)' },
    }),
    { name: 'window' },
  );
  if (c.mapAfter === true) s = s.via(failing(false), { name: 'after' });
  s.to(out, { name: 'out' });
  p.dlq(dead);
  const summary = await p.run({ clock: new ManualClock(T0) }).done;
  assert.equal(summary.state, 'succeeded');
  return { results: out.records(), dead: dead.records(), fields: src.splitInput() };
}

describe('projection with a dlq', () => {
  let dir: string;
  const files: Record<string, string> = {};
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-projdlq-'));
    files.csv = join(dir, 'in.csv');
    files.jsonl = join(dir, 'in.jsonl');
    files.gz = join(dir, 'in.csv.gz');
    await writeFile(files.csv, csvText());
    await writeFile(files.jsonl, jsonlText());
    await writeFile(files.gz, gzipSync(csvText()));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const [file, format] of [
    ['csv', 'csv'],
    ['jsonl', 'jsonl'],
    ['gz', 'csv'],
  ] as const) {
    for (const c of [{}, { mapBefore: true }, { mapAfter: true }, { celBefore: true }] as Case[]) {
      it(`${file}${c.mapBefore ? ', a failing map before the window' : ''}${c.mapAfter ? ', a failing map after it' : ''}${c.celBefore ? ', a CEL filter before it' : ''}: the same letters and results as without projection`, async () => {
        const projected = await run(files[file] as string, format, c, true);
        const whole = await run(files[file] as string, format, c, false);
        // Letters of different stages reach the dlq in no fixed order between them: compare as sets.
        assert.deepEqual(inOrder(projected.dead), inOrder(whole.dead));
        assert.deepEqual(projected.results, whole.results);
        // Every kind of letter is there: decoder, bad time, bad amount, late (and the map's).
        const reasons = projected.dead.map((d) => `${d.stage}:${String(d.error.reason ?? d.error.code)}`);
        assert.ok(
          reasons.some((r) => r.startsWith('input:')),
          reasons.join(),
        );
        for (const why of ['window:time', 'window:late'])
          assert.ok(c.mapBefore === true || reasons.includes(why), `${why} in ${reasons.join()}`);
        const projectedCsv = file !== 'gz' && c.mapBefore !== true;
        const fields = typeof projected.fields === 'string' ? undefined : projected.fields.fields;
        const expected =
          c.celBefore === true ? ['note', 'country', 'amount', 'ts'] : ['country', 'amount', 'ts'];
        assert.deepEqual(fields, projectedCsv ? expected : undefined, 'projection made');
        // Each letter names its record's line (a CSV file's header is line 1): behind a filter,
        // the window's batches are subsets of the source's.
        const header = format === 'csv' ? 1 : 0;
        const lines = Object.fromEntries(
          projected.dead.map((d) => [
            `${d.stage}:${String(d.error.reason ?? d.error.code)}`,
            d.position?.line,
          ]),
        );
        if (c.mapBefore !== true) {
          assert.equal(lines['window:time'], 2 + header, JSON.stringify(lines));
          assert.equal(lines['window:late'], 6 + header, JSON.stringify(lines));
        }
        if (c.celBefore === true) {
          const letter = projected.dead.find((d) => d.stage === 'cel');
          assert.equal(letter?.position?.line, 8 + header, JSON.stringify(lines));
          // The whole record, not the projected one.
          assert.deepEqual(Object.keys(letter?.record as object), HEADER.split(','));
          assert.equal((letter?.record as { note?: string } | undefined)?.note, 'last');
          assert.equal(projected.results.length, whole.results.length);
        }
      });
    }
  }
});
