/**
 * Issue #14 §5 acceptance: a Kafka → rolling file job through the real CLI (`sluice run`),
 * SIGKILLed several times mid-run, then run to the end. Meanwhile a reader polls the output
 * folder and reads every part as soon as it has its final name: it must always find a whole
 * zstd stream of whole JSON lines (never a partial part), and in the end the committed parts
 * hold every input record exactly once, with nothing left staged. A second test kills the run
 * right after a checkpoint is stored and before its parts are renamed, and after the end of the
 * input before the job's checkpoints are deleted (`SLUICE_TEST_CRASH`).
 * Needs the shared broker (`npm run services -- up kafka`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';
import { createTopic, fresh, produceMany } from '../src/connectors/kafka/test-helpers.ts';

const BROKER = process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092';
const BIN = new URL('../bin/sluice.js', import.meta.url).pathname;

/** Files under `d`, relative, split into committed parts and staged files. */
function listing(d: string): { parts: string[]; staged: string[] } {
  if (!existsSync(d)) return { parts: [], staged: [] };
  const all = readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(d, join(e.parentPath, e.name)));
  return {
    parts: all.filter((f) => !f.includes('.sluice-parts-')).sort(),
    staged: all.filter((f) => f.includes('.sluice-parts-')),
  };
}

/** The `seq` of every line of a part; throws when the part is not a whole zstd stream of whole JSON lines. */
function readPart(file: string): number[] {
  const text = zstdDecompressSync(readFileSync(file)).toString('utf8');
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the last line is cut');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

/**
 * Polls `d` every 20 ms and reads each part once it has its final name, as a downstream reader
 * would; a part it cannot read whole is recorded in `partial`. `committed` counts the records in
 * the parts read so far.
 */
function watcher(d: string) {
  const seen = new Map<string, number[]>();
  const partial: string[] = [];
  let committed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const f of listing(d).parts) {
        if (seen.has(f)) continue;
        try {
          const seqs = readPart(join(d, f));
          seen.set(f, seqs);
          committed += seqs.length;
        } catch (err) {
          partial.push(`${f}: ${(err as Error).message}`);
          seen.set(f, []);
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    seen,
    partial,
    committed: () => committed,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

function cli(file: string, cwd: string, env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'run', file], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (b) => {
    stderr += b;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

function pipeline(topic: string, extra = ''): string {
  return `name: it-rolling-${randomUUID().slice(0, 8)}
input:
  kafka: { brokers: ${BROKER}, topic: ${topic}, group: ${fresh('g')}, batchSize: 100, idleTimeout: 3s }
pipeline:
${extra}  - map: { fields: { doubled: 'seq * 2' } }
output:
  file: { path: "out/%Y-%m-%d/part-{part}.jsonl.zst", format: jsonl, rolling: { maxSize: 8KB } }
checkpoint: { interval: 1h, records: 700 }
`;
}

/** Every `seq` of `0..n-1` exactly once in the parts read: missing and repeated ones are named. */
function assertExactlyOnce(seen: Map<string, number[]>, n: number): void {
  const all = [...seen.values()].flat();
  const counts = new Map<number, number>();
  for (const s of all) counts.set(s, (counts.get(s) ?? 0) + 1);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !counts.has(i));
  const twice = [...counts].filter(([, c]) => c > 1).map(([s]) => s);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} records missing from the parts`);
  assert.deepEqual(twice.slice(0, 10), [], `${twice.length} records in the parts more than once`);
  assert.equal(all.length, n);
}

describe('kafka → rolling file parts through the CLI (real broker)', () => {
  test('SIGKILLed three times: every record in exactly one committed part, and no reader sees a partial part', async () => {
    const N = 12_000;
    const topic = await createTopic([BROKER], 'rolling', 3);
    await produceMany([BROKER], topic, N, (i) => ({
      key: `k${i % 97}`,
      value: JSON.stringify({ seq: i, pad: 'x'.repeat(40) }),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'sluice-rolling-kafka-'));
    const out = join(dir, 'out');
    const reader = watcher(out);
    try {
      const file = join(dir, 'pipeline.yaml');
      // Paced, so each kill lands mid-run whatever the machine's speed.
      writeFileSync(file, pipeline(topic, '  - throttle: { rate: 2000 }\n'));
      let stagedAtKill = 0;
      for (const mark of [N * 0.15, N * 0.4, N * 0.65]) {
        const run = cli(file, dir);
        let ended = false;
        void run.exited.then(() => {
          ended = true;
        });
        const deadline = Date.now() + 90_000;
        while (!ended && Date.now() < deadline && reader.committed() < mark)
          await new Promise((r) => setTimeout(r, 20));
        assert.ok(!ended, `the run ended before the kill at ${mark}: ${run.stderr()}`);
        assert.ok(reader.committed() >= mark, `no progress to ${mark} in 90 s: ${run.stderr()}`);
        run.child.kill('SIGKILL');
        await run.exited;
        stagedAtKill += listing(out).staged.length;
      }
      const last = cli(file, dir);
      const { code } = await last.exited;
      assert.equal(code, 0, last.stderr());
      await new Promise((r) => setTimeout(r, 100));
      await reader.stop();

      assert.deepEqual(reader.partial, [], 'a reader saw a part that was not whole');
      assert.ok(stagedAtKill > 0, 'the kills left staged parts behind (they landed between checkpoints)');
      const { parts, staged } = listing(out);
      assert.deepEqual(
        staged.map((f) => f.split('/').at(-1)),
        ['finished.json'],
        'only the marker of the finished job is left staged',
      );
      assert.equal(reader.seen.size, parts.length, 'the reader read every part');
      assert.ok(parts.length >= 10, `parts rolled while the job ran: ${parts.length}`);
      for (const f of parts) assert.match(f, /^\d{4}-\d{2}-\d{2}\/part-[0-9a-f]{8}-\d+\.jsonl\.zst$/);
      assertExactlyOnce(reader.seen, N);
    } finally {
      await reader.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [crash, what, expectWarning] of [
    [
      'after-store:3',
      'after checkpoint 3 is stored and before its parts are renamed: the restart renames them',
      undefined,
    ],
    [
      'before-clear',
      'after the end of the input, before the checkpoints are deleted: the restart writes nothing again',
      /already hold every record of this input/,
    ],
  ] as const) {
    test(`killed ${what}; no record lost or repeated`, async () => {
      const N = 4000;
      const topic = await createTopic([BROKER], 'rolling-crash', 2);
      await produceMany([BROKER], topic, N, (i) => ({
        key: `k${i % 13}`,
        value: JSON.stringify({ seq: i }),
      }));
      const dir = mkdtempSync(join(tmpdir(), 'sluice-rolling-crash-'));
      const out = join(dir, 'out');
      try {
        const file = join(dir, 'pipeline.yaml');
        writeFileSync(file, pipeline(topic));
        const first = cli(file, dir, { SLUICE_TEST_CRASH: crash });
        assert.equal(
          (await first.exited).signal,
          'SIGKILL',
          `the run reached \`${crash}\`: ${first.stderr()}`,
        );
        const before = listing(out);
        assert.ok(before.staged.length > 0, 'the crash left staged files');
        const second = cli(file, dir);
        assert.equal((await second.exited).code, 0, second.stderr());
        const { parts, staged } = listing(out);
        assert.deepEqual(
          staged.map((f) => f.split('/').at(-1)),
          ['finished.json'],
        );
        if (expectWarning !== undefined) {
          assert.match(second.stderr(), expectWarning);
          assert.deepEqual(parts, before.parts, 'the restart wrote no part');
        }
        assertExactlyOnce(new Map(parts.map((f) => [f, readPart(join(out, f))])), N);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
