/**
 * `sluice run` of `file (csv) → stdout (jsonl)`, which the planner fuses (the source writes JSON
 * Lines bytes itself, `core/encoded.ts`), against the same pipeline with a pass-through `filter`
 * step, which it never fuses: the same stdout bytes, the same dlq file and the same counts, for a
 * plain and a gzip-compressed input file and for standard input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

const bin = new URL('../bin/sluice.js', import.meta.url).pathname;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-cli-transcode-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A CSV with quotes, CRLF, a BOM, non-ASCII, JSON escapes and three kinds of bad rows. */
function csv(): Buffer {
  const parts: Buffer[] = [Buffer.from('\ufeffid,note,city\r\n')];
  for (let i = 0; i < 5000; i++) {
    if (i % 501 === 3) parts.push(Buffer.from(`${i},extra,field,here\n`));
    else if (i % 777 === 5) parts.push(Buffer.from(`${i},"open"quote,x\n`));
    else if (i % 999 === 7) parts.push(Buffer.from(`${i},`), Buffer.from([0xc3, 0x28]), Buffer.from(',x\n'));
    else parts.push(Buffer.from(`${i},"say ""hi"",\\ \u0007\nok",${i % 2 ? 'Kraków' : 'Lyon'}\r\n`));
  }
  return Buffer.concat(parts);
}

/** Runs `input` (a path, or bytes piped to standard input) through `sluice run`, with or without a pass-through step. */
function run(input: string | Buffer, step: boolean, tag: string) {
  const dead = join(dir, `dead-${tag}.jsonl`);
  const yaml = join(dir, `${tag}.yaml`);
  return writeFile(
    yaml,
    `name: t\ninput:\n  ${typeof input === 'string' ? `file: { path: ${input}, format: csv }` : 'stdin: { format: csv }'}\n${step ? "pipeline:\n  - filter: 'true'\n" : ''}output:\n  stdout: { format: jsonl }\ndlq:\n  file: { path: ${dead}, format: jsonl }\n`,
  ).then(async () => {
    const r = spawnSync(process.execPath, [bin, 'run', yaml], {
      encoding: 'buffer',
      maxBuffer: 1 << 28,
      ...(typeof input === 'string' ? {} : { input }),
    });
    assert.equal(r.status, 0, r.stderr.toString());
    const letters = (await readFile(dead, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const { time: _time, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return rest;
      });
    const counts = /(\d[\d,]*) read, (\d[\d,]*) written, (\d[\d,]*) to DLQ/
      .exec(r.stderr.toString())
      ?.slice(1);
    return { stdout: r.stdout, letters, counts };
  });
}

describe('`sluice run` CSV → JSON Lines on stdout, fused and not', () => {
  for (const gz of [false, true]) {
    it(`gives the same output, dead letters and counts (${gz ? 'gzip' : 'plain'} input)`, async () => {
      const input = join(dir, gz ? 'in.csv.gz' : 'in.csv');
      await writeFile(input, gz ? gzipSync(csv()) : csv());
      const fused = await run(input, false, `fused-${gz}`);
      const general = await run(input, true, `general-${gz}`);
      assert.ok(fused.stdout.length > 100_000);
      assert.ok(fused.stdout.equals(general.stdout), 'same stdout bytes');
      assert.deepEqual(fused.letters, general.letters);
      assert.equal(fused.letters.length, 10 + 7 + 5);
      assert.deepEqual(fused.counts, general.counts);
      assert.deepEqual(fused.counts, ['4,978', '4,978', '22']);
    });
  }

  it('gives the same output, dead letters and counts from standard input', async () => {
    const fused = await run(csv(), false, 'stdin-fused');
    const general = await run(csv(), true, 'stdin-general');
    assert.ok(fused.stdout.length > 100_000);
    assert.ok(fused.stdout.equals(general.stdout), 'same stdout bytes');
    assert.deepEqual(fused.letters, general.letters);
    assert.deepEqual(fused.counts, ['4,978', '4,978', '22']);
    assert.deepEqual(fused.counts, general.counts);
  });
});
