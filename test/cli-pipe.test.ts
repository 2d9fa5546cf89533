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
