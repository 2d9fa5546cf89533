import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const bin = new URL('../bin/sluice.js', import.meta.url).pathname;

test('`sluice run … | head`: a reader that goes away ends the run quietly with exit code 0', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pipe-'));
  try {
    const file = join(dir, 'p.yaml');
    await writeFile(file, 'input:\n  generate: { count: 1000000 }\noutput:\n  stdout: { format: jsonl }\n');
    const child = spawn(process.execPath, [bin, 'run', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const first = await new Promise<string>((resolve) =>
      child.stdout.once('data', (d) => resolve(String(d))),
    );
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.match(first, /^\{"id":0,/);
    assert.equal(code, 0);
    assert.doesNotMatch(stderr, /Error|SLUICE_/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('`sluice run` CSV file → stdout through a slow pipe: every row arrives intact and in order (reused read and write buffers)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pipe-'));
  try {
    // Rows of varying length, so every batch's text has a different size and a reused buffer
    // that was overwritten too early would show as a damaged or repeated line.
    const rows = Array.from({ length: 30_000 }, (_, i) => ({
      id: String(i),
      note: `row ${i} ${'é,x"'.repeat(i % 23)}`,
    }));
    const csv = `id,note\n${rows.map((r) => `${r.id},"${r.note.replaceAll('"', '""')}"`).join('\n')}\n`;
    await writeFile(join(dir, 'in.csv'), csv);
    const file = join(dir, 'p.yaml');
    await writeFile(
      file,
      'input:\n  file: { path: in.csv, format: csv }\noutput:\n  stdout: { format: jsonl }\n',
    );
    const child = spawn(process.execPath, [bin, 'run', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const chunks: Buffer[] = [];
    // A reader that pauses now and then, so the pipe fills and writes wait.
    child.stdout.on('data', (d: Buffer) => {
      chunks.push(d);
      if (chunks.length % 8 === 0) {
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), 5);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
    assert.equal(lines.length, rows.length);
    for (let i = 0; i < rows.length; i++) assert.deepEqual(JSON.parse(lines[i]!), rows[i], `line ${i + 1}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
