/**
 * Ctrl-C through the real CLI: the first SIGINT drains (every record read reaches the sink,
 * which commits a complete file), the summary says `Stopped` and the run exits 130. Needs the `generate` source and the
 * `file` sink. The two-signal case (exit 130) is tested in-process in cli.test.ts, where the
 * second signal cannot race the end of the drain; here with runs that cannot end by themselves:
 * a batch of slow CEL evaluations (the operator yields mid-batch, so signals are seen) and a
 * stdout pipe nobody reads (the second signal exits even with writes pending).
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

it('the first SIGINT drains an unbounded run into an output marked partial, never the final name, says Stopped and exits 130', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-sigint-'));
  try {
    writeFileSync(
      join(work, 'pipeline.yaml'),
      'name: sigint\ninput: { generate: { seed: 3, batchSize: 64 } }\noutput: { file: { path: out.jsonl, format: jsonl } }\n',
    );
    const run = start(work);
    const { child } = run;
    // Wait (by polling, not by a fixed delay) until records are being written to the sink's temporary file.
    let writing = false;
    while (!writing && child.exitCode === null) {
      writing = readdirSync(work).some(
        (f) => f !== 'out.jsonl' && f.includes('out.jsonl') && statSync(join(work, f)).size > 0,
      );
      if (!writing) await sleep(20);
    }
    assert.ok(writing, `the run never started writing:\n${run.stderr()}`);
    child.kill('SIGINT');
    const code = await run.exit(60, 'the drain did not end');
    const stderr = run.stderr();
    assert.equal(code, 130, stderr);
    assert.match(stderr, /Stopping: draining in-flight records \(press Ctrl-C again to stop at once\)/);
    assert.match(stderr, /Stopped `sigint` after /);
    assert.doesNotMatch(stderr, /Finished/);
    // A stop is not the end of the input: the final name never holds a cut-off output.
    assert.ok(!existsSync(join(work, 'out.jsonl')), 'the drained run passed a partial output off as final');
    assert.ok(existsSync(join(work, 'out.jsonl.partial')), 'the drained run kept no output');
    assert.match(stderr, /the output so far is in `[^`]*out\.jsonl\.partial`/);
    const lines = readFileSync(join(work, 'out.jsonl.partial'), 'utf8').split('\n');
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

/** A pipeline whose filter logs a warning once it is open (its rule file is missing), so the test knows the CLI's signal handlers are in place. */
function slowPipeline(expr: string, output: string): string {
  return [
    'name: slow',
    'input: { generate: { seed: 3, batchSize: 5000 } }',
    'pipeline:',
    `  - filter: { expr: '${expr}', rules: { file: missing-rules.yaml } }`,
    `output: ${output}`,
    '',
  ].join('\n');
}

/** Starts `sluice run pipeline.yaml` in `work`; stdout is a pipe the test never reads. */
function start(work: string) {
  const child = spawn(process.execPath, [bin, 'run', 'pipeline.yaml'], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let code: number | null | undefined;
  void exited.then((c) => {
    code = c;
  });
  /** Waits (polling) until stderr matches `re`, at most `seconds`; fails with `why` and stderr. */
  const waitFor = async (re: RegExp, seconds: number, why: string) => {
    const deadline = Date.now() + seconds * 1000;
    while (!re.test(stderr) && code === undefined && Date.now() < deadline) await sleep(20);
    assert.match(stderr, re, `${why} (waited up to ${seconds}s)`);
  };
  /** The exit code, waiting at most `seconds`; kills the child and fails with `why` after that. */
  const exit = async (seconds: number, why: string) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000);
    const c = await exited;
    clearTimeout(timer);
    assert.notEqual(c, null, `${why} (killed after ${seconds}s):\n${stderr}`);
    return c;
  };
  return { child, waitFor, exit, stderr: () => stderr };
}

const LIST = `[${Array.from({ length: 200 }, (_, i) => i).join(',')}]`;

it('SIGTERM is seen in the middle of a batch of slow CEL evaluations; a second SIGTERM exits 143 at once', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-sigterm-slow-'));
  try {
    // ~10 ms per record, 5,000 records per batch: ~50 s of synchronous work per batch.
    writeFileSync(
      join(work, 'pipeline.yaml'),
      slowPipeline(
        `id >= 0 && ${LIST}.all(x, ${LIST}.exists(y, x == y))`,
        '{ file: { path: out.jsonl, format: jsonl } }',
      ),
    );
    const run = start(work);
    await run.waitFor(/Could not read rule set/, 60, 'the run never opened its filter');
    await sleep(500); // into the first batch
    run.child.kill('SIGTERM');
    await run.waitFor(
      /Stopping: draining/,
      20,
      'the first SIGTERM was not seen: the batch loop never yields',
    );
    run.child.kill('SIGTERM');
    assert.equal(await run.exit(20, 'the second SIGTERM did not stop the run'), 143, run.stderr());
    assert.match(run.stderr(), /Stopping now: in-flight records are dropped/);
    assert.match(run.stderr(), /Stopped `slow` after /);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

it('a second SIGINT exits 130 even when stdout is a pipe nobody reads', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-sigint-blocked-'));
  try {
    writeFileSync(join(work, 'pipeline.yaml'), slowPipeline('id >= 0', '{ stdout: { format: jsonl } }'));
    const run = start(work);
    await run.waitFor(/Could not read rule set/, 60, 'the run never opened its filter');
    await sleep(500); // the pipe's buffer fills; the sink's writes wait
    run.child.kill('SIGINT');
    await run.waitFor(/Stopping: draining/, 20, 'the first SIGINT was not seen');
    run.child.kill('SIGINT');
    assert.equal(await run.exit(20, 'the second SIGINT did not end the process'), 130, run.stderr());
    assert.match(run.stderr(), /Stopped `slow` after /);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

it('under npx, a run whose starting shell goes away (npm killed) stops as on SIGTERM instead of running on as an orphan', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sluice-orphan-'));
  try {
    writeFileSync(
      join(work, 'pipeline.yaml'),
      'name: orphan\ninput: { generate: { seed: 3, batchSize: 64 } }\noutput: { file: { path: out.jsonl, format: jsonl } }\n',
    );
    // npx runs `sh -c sluice …`; a SIGTERM to npm kills that shell and passes nothing on.
    const shell = spawn('sh', ['-c', `"${process.execPath}" "${bin}" run pipeline.yaml & echo $!; wait`], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_command: 'exec' },
    });
    let stdout = '';
    let stderr = '';
    shell.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    shell.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    while (!/Progress|read/.test(stderr) && !existsSync(join(work, 'out.jsonl.partial'))) {
      const writing = readdirSync(work).some(
        (f) => f.includes('out.jsonl') && statSync(join(work, f)).size > 0,
      );
      if (writing) break;
      await sleep(20);
    }
    const pid = Number(stdout.trim());
    assert.ok(pid > 0, `no pid from the shell: ${stdout}`);
    shell.kill('SIGKILL');
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 30_000;
    while (alive() && Date.now() < deadline) await sleep(50);
    const left = alive();
    if (left) process.kill(pid, 'SIGKILL');
    assert.ok(!left, `the orphaned run went on for 30 s:\n${stderr}`);
    await sleep(200); // the pipe delivers its last lines
    assert.match(stderr, /Stopped `orphan` after /);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
