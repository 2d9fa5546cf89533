/**
 * Ctrl-C through the real CLI: the first SIGINT drains (every record read reaches the sink,
 * which commits a complete file) and the run exits 0. Needs the `generate` source and the
 * `file` sink. The two-signal case (exit 130) is tested in-process in cli.test.ts, where the
 * second signal cannot race the end of the drain.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));

it('the first SIGINT drains an unbounded run into a complete output file and exits 0', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-sigint-'));
  try {
    writeFileSync(
      join(work, 'pipeline.yaml'),
      'name: sigint\ninput: { generate: { seed: 3, batchSize: 64 } }\noutput: { file: { path: out.jsonl, format: jsonl } }\n',
    );
    const child = spawn(process.execPath, [bin, 'run', 'pipeline.yaml'], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait (by polling, not by a fixed delay) until records are being written to the sink's temporary file.
    let writing = false;
    while (!writing && child.exitCode === null) {
      writing = readdirSync(work).some(
        (f) => f !== 'out.jsonl' && f.includes('out.jsonl') && statSync(join(work, f)).size > 0,
      );
      if (!writing) await sleep(20);
    }
    assert.ok(writing, `the run never started writing:\n${stderr}`);
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /Stopping: draining in-flight records \(press Ctrl-C again to stop at once\)/);
    assert.match(stderr, /Finished `sigint`/);
    assert.ok(existsSync(join(work, 'out.jsonl')), 'the drained run committed no output file');
    const lines = readFileSync(join(work, 'out.jsonl'), 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'the file ends with a newline (no partial last line)');
    assert.ok(lines.length > 0);
    lines.forEach((line, i) => {
      const rec = JSON.parse(line) as { id: number };
      assert.equal(rec.id, i, `line ${i + 1} is record ${i}: nothing lost or repeated`);
    });
    const read = /(\d[\d,]*) read, (\d[\d,]*) written/.exec(stderr);
    assert.ok(read, stderr);
    assert.equal(Number(read[2]?.replace(/,/g, '')), lines.length, 'the summary counts what the file holds');
    assert.equal(read[1], read[2], 'every record read was written');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
