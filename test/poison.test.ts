/**
 * Poison records end to end: input nesting deeper than any recursive walk can go, records no
 * output format can hold, and dead letters the dlq itself cannot write. A record that cannot be
 * handled goes to the dlq — reduced to its position, error and first 4 KiB when the dlq cannot
 * take it whole — and the run goes on; the run fails only when even the reduced letter is refused.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../src/cli/main.ts';
import type { CliIO } from '../src/cli/output.ts';
import type { Batch } from '../src/core/message.ts';
import type { DeadLetter, Sink, Source, StageContext } from '../src/core/stage.ts';
import { fileSink, fileSource, Pipeline } from '../src/index.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-poison-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const deepJson = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

function deepValue(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

class Capture {
  text = '';
  readonly isTTY = false;
  readonly columns = 200;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function cli(argv: string[]): Promise<{ code: number; stderr: string }> {
  const stderr = new Capture();
  const io: Partial<CliIO> = { stdout: new Capture(), stderr, env: {}, signals: new EventEmitter() };
  const code = await main(argv, io);
  return { code, stderr: stderr.text };
}

function arraySource(batches: unknown[][]): Source {
  return {
    async run(out) {
      for (const records of batches) await out.emit({ kind: 'batch', records });
    },
  };
}

describe('poison records', () => {
  it('a JSON line nested 5,000 deep goes to the dlq and the run goes on (`sluice run`)', async () => {
    const input = join(dir, 'deep.jsonl');
    writeFileSync(input, `{"ok":1}\n${deepJson(5000)}\n{"ok":2}\n`);
    const out = join(dir, 'out.jsonl');
    const dead = join(dir, 'dead.jsonl');
    const yaml = join(dir, 'p.yaml');
    writeFileSync(
      yaml,
      `name: deep\ninput: {file: {path: ${input}, format: jsonl}}\noutput: {file: {path: ${out}, format: jsonl}}\ndlq: {file: {path: ${dead}, format: jsonl}}\n`,
    );
    const r = await cli(['run', yaml]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(out), [{ ok: 1 }, { ok: 2 }]);
    const letters = lines(dead);
    assert.equal(letters.length, 1);
    const error = letters[0]?.error as Record<string, unknown>;
    assert.equal(error.code, 'SLUICE_PARSE');
    assert.match(
      String(error.message),
      /^line 2 \(byte 9\): invalid JSON: the value nests deeper than 512 levels of objects and arrays \(level 513 opens at byte 2560 of it\); fix the line or let it go to the dlq$/,
    );
    assert.deepEqual(letters[0]?.position, { file: input, line: 2, offset: 9 });
    // A parse error keeps the raw text, cut to 4 KiB.
    assert.equal(String(letters[0]?.record).length, 4096);
  });

  it('a record built too deep is dead-lettered by the output, and the dlq writes it reduced', async () => {
    const out = join(dir, 'built.jsonl');
    const dead = join(dir, 'built-dead.jsonl');
    const warnings: string[] = [];
    const p = new Pipeline('built');
    p.from(arraySource([[{ n: 1 }, { n: 2 }, { n: 3 }]]))
      .map((r) => ((r as { n: number }).n === 2 ? deepValue(6000) : r))
      .to(fileSink({ path: out, format: 'jsonl' }));
    p.dlq(fileSink({ path: dead, format: 'jsonl' }));
    const summary = await p.run({
      log: { info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    }).done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(summary.deadLetters, 1);
    assert.deepEqual(lines(out), [{ n: 1 }, { n: 3 }]);
    const [letter] = lines(dead);
    assert.ok(letter);
    assert.equal(letter.reduced, true);
    assert.equal(letter.stage, 'sink');
    const error = letter.error as Record<string, string>;
    assert.equal(error.code, 'SLUICE_RECORD');
    assert.match(
      error.message ?? '',
      /^writing JSON: the record nests deeper than 512 levels .* \(at `a\.a\.a\.a\.a\.a…`\)/,
    );
    assert.match(error.dlqError ?? '', /nests deeper than 512 levels/);
    assert.ok(typeof letter.record === 'string' && letter.record.startsWith('{"a":{"a":'));
    assert.ok(letter.record.length <= 4097);
    assert.match(warnings.join('\n'), /The dlq `dlq` could not write 1 dead letter as it was/);
  });

  it('a CSV output dead-letters a record with a field it cannot write and keeps its header', async () => {
    const out = join(dir, 'rows.csv');
    const dead: DeadLetter[] = [];
    const p = new Pipeline('csv');
    p.from(
      arraySource([
        [
          { a: deepValue(6000), b: 1 },
          { a: 'x', b: 2 },
          { a: new Date(Number.NaN), b: 3 },
          { a: 'y', b: 4 },
        ],
      ]),
    ).to(fileSink({ path: out, format: 'csv' }));
    p.dlq({ write: (b: Batch<unknown>) => void dead.push(...(b.records as DeadLetter[])) });
    const summary = await p.run().done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(readFileSync(out, 'utf8'), 'a,b\nx,2\ny,4\n');
    assert.deepEqual(
      dead.map((l) => l.error.code),
      ['SLUICE_RECORD', 'SLUICE_RECORD'],
    );
    assert.match(dead[0]?.error.message ?? '', /nests deeper than 512 levels/);
    assert.match(dead[1]?.error.message ?? '', /invalid Date/);
  });

  it('a dlq sink that rejects a letter gets it again reduced, whatever the sink', async () => {
    const written: DeadLetter[] = [];
    let ctx: StageContext | undefined;
    // Like a database dlq refusing a row: rejects letters whose record is an object.
    const picky: Sink = {
      open: (c) => {
        ctx = c;
      },
      write(b) {
        for (let i = 0; i < b.records.length; i++) {
          const l = b.records[i] as DeadLetter;
          if (typeof l.record !== 'string')
            ctx?.deadLetter(l, new Error('column `record` takes text'), b.meta?.[i]);
          else written.push(l);
        }
      },
    };
    const p = new Pipeline('picky');
    p.from(arraySource([[1, 2, 3]]))
      .map((n) => {
        if (n === 2) throw new Error('two is bad');
        return n;
      })
      .to({ write() {} });
    p.dlq(picky);
    const summary = await p.run({ log: { info() {}, warn() {}, error() {} } }).done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(written.length, 1);
    assert.equal(written[0]?.record, '2');
    assert.equal(written[0]?.reduced, true);
    assert.equal(written[0]?.error.message, 'two is bad');
    assert.equal(written[0]?.error.dlqError, 'column `record` takes text');
  });

  it('a dlq sink whose write throws a record error writes the batch again, reduced', async () => {
    const batches: DeadLetter[][] = [];
    const p = new Pipeline('throws');
    p.from(arraySource([[deepValue(6000), deepValue(6000)]]))
      .map(() => {
        throw new Error('cannot map it');
      })
      .to({ write() {} });
    p.dlq({
      write(b) {
        // An encoder that walks records recursively, as a connector's may.
        for (const l of b.records) JSON.stringify(l);
        batches.push(b.records as DeadLetter[]);
      },
    });
    const summary = await p.run({ log: { info() {}, warn() {}, error() {} } }).done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(batches.length, 1);
    assert.equal(batches[0]?.length, 2);
    assert.ok(batches[0]?.every((l) => l.reduced === true && typeof l.record === 'string'));
  });

  it('fails the run clearly only when the dlq refuses even the reduced letter', async () => {
    const p = new Pipeline('refuses');
    let ctx: StageContext | undefined;
    p.from(arraySource([[1]]))
      .map(() => {
        throw new Error('bad');
      })
      .to({ write() {} });
    p.dlq({
      open: (c) => {
        ctx = c;
      },
      write(b) {
        for (const l of b.records) ctx?.deadLetter(l, new Error('the table is read-only'));
      },
    });
    await assert.rejects(
      p.run({ log: { info() {}, warn() {}, error() {} } }).done,
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLUICE_STAGE');
        assert.match(
          err.message,
          /the dlq `dlq` could not write a dead letter \(from stage `map`\) even reduced to its position, error and the first 4 KiB of the record: the table is read-only; fix the dlq output so it takes every record/,
        );
        return true;
      },
    );
  });

  it('reads a deep JSON line from a file source as a dead letter, not a crash', async () => {
    const input = join(dir, 'deep2.jsonl');
    writeFileSync(
      input,
      `${deepJson(100_000)}\n[${'['.repeat(600)}${']'.repeat(600)}]\n"${'['.repeat(2000)}"\n`,
    );
    const got: unknown[] = [];
    const dead: DeadLetter[] = [];
    const p = new Pipeline('deep2');
    p.from(fileSource({ path: input, format: 'jsonl' })).to({ write: (b) => void got.push(...b.records) });
    p.dlq({ write: (b: Batch<unknown>) => void dead.push(...(b.records as DeadLetter[])) });
    const summary = await p.run().done;
    assert.equal(summary.state, 'succeeded');
    // Brackets inside a string are no nesting.
    assert.deepEqual(got, ['['.repeat(2000)]);
    assert.deepEqual(
      dead.map((l) => l.position?.line),
      [1, 2],
    );
  });
});
