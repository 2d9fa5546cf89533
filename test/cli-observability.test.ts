/**
 * `sluice run --log-format json` and `sluice run --http` (and `http:` in the file) in-process,
 * with the test components: every stderr line is one JSON object with the fixed fields, secrets
 * are redacted in it, and the HTTP address serves metrics while the run lasts.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { main } from '../src/cli/main.ts';
import type { CliIO } from '../src/cli/output.ts';
import { testRegistry } from '../src/config/test-registry.ts';
import { Capture, tempFiles } from './support/capture.ts';

const file = tempFiles('sluice-obs-');

function cli(argv: string[], over: Partial<CliIO> = {}) {
  const stderr = (over.stderr as Capture | undefined) ?? new Capture();
  const signals = (over.signals as EventEmitter | undefined) ?? new EventEmitter();
  const done = main(argv, {
    stdout: new Capture(),
    stderr,
    env: {},
    registry: testRegistry(),
    signals,
    ...over,
  });
  return { done, stderr, signals };
}

/** Every line of `text` as JSON; fails on a line that is not. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
      return parsed;
    });
}

describe('sluice run --log-format json', () => {
  it('writes one JSON object per line: time, level, pipeline, message, and the totals as context', async () => {
    const r = cli([
      'run',
      file(
        'good.yaml',
        'name: good\ninput: { memory: { records: [1, 2, 3] } }\noutput: { collect: { id: obs-good } }\n',
      ),
      '--log-format',
      'json',
    ]);
    assert.equal(await r.done, 0, r.stderr.text);
    const lines = jsonLines(r.stderr.text);
    const last = lines.at(-1) as Record<string, unknown>;
    assert.equal(last.level, 'info');
    assert.equal(last.pipeline, 'good');
    assert.match(String(last.message), /^Finished `good` in \S+: 3 read, 3 written, 0 to DLQ/);
    assert.deepEqual(
      { ...(last.context as object), elapsedMs: 0 },
      {
        state: 'succeeded',
        elapsedMs: 0,
        recordsRead: 3,
        recordsWritten: 3,
        deadLetters: 0,
        droppedRecords: 0,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(String(last.time))), 'time is ISO-8601');
  });

  it('logs the error that failed the run with its code and stage, and secrets redacted', async () => {
    const r = cli(
      [
        'run',
        file(
          'bad.yaml',
          'name: bad\ninput: { memory: { records: [{ hunter2hunter2: 1 }] } }\npipeline:\n  - reject: { field: "$' +
            '{FIELD}" }\noutput: { collect: { id: obs-bad } }\n',
        ),
        '--log-format',
        'json',
      ],
      { env: { FIELD: 'hunter2hunter2' } },
    );
    assert.equal(await r.done, 1);
    assert.ok(!r.stderr.text.includes('hunter2hunter2'), `a secret reached the log:\n${r.stderr.text}`);
    const error = jsonLines(r.stderr.text).find((l) => l.code === 'SLUICE_NO_DLQ');
    assert.ok(error, r.stderr.text);
    assert.equal(error.level, 'error');
    assert.equal(error.pipeline, 'bad');
    assert.equal(error.stage, 'reject');
    assert.match(String(error.message), /record has `\$\{FIELD\}`/);
  });

  it('rejects an unknown format, naming the choices', async () => {
    const r = cli([
      'run',
      file('x.yaml', 'input: { memory: { records: [1] } }\noutput: { collect: { id: x } }\n'),
      '--log-format',
      'yaml',
    ]);
    assert.equal(await r.done, 2);
    assert.match(r.stderr.text, /unknown log format `yaml`: use `text` or `json`/);
  });
});

describe('sluice run --http', () => {
  it('serves /metrics while the run lasts and stops serving when it ends', async () => {
    const r = cli([
      'run',
      file('tick.yaml', 'name: tick\ninput: { ticker: {} }\noutput: { collect: { id: obs-tick } }\n'),
      '--http',
      '127.0.0.1:0',
    ]);
    let url: string | undefined;
    for (let i = 0; i < 400 && url === undefined; i++) {
      url = /Serving metrics and the dashboard at (\S+)/.exec(r.stderr.text)?.[1];
      await sleep(5);
    }
    assert.ok(url, r.stderr.text);
    let read = 0;
    for (let i = 0; i < 400 && read < 5; i++) {
      const text = await (await fetch(`${url}metrics`)).text();
      read = Number(/sluice_records_in_total\{pipeline="tick",stage="input"\} (\d+)/.exec(text)?.[1] ?? 0);
      await sleep(5);
    }
    assert.ok(read >= 5, 'the counter never moved');
    assert.equal((await fetch(`${url}ready`)).status, 200);
    r.signals.emit('SIGINT');
    assert.equal(await r.done, 130);
    await assert.rejects(fetch(`${url}health`), 'the server outlived the run');
  });

  it('takes the address from `http:` in the file, and checks it', async () => {
    const bad = cli([
      'run',
      file(
        'h.yaml',
        'input: { memory: { records: [1] } }\noutput: { collect: { id: h } }\nhttp: { address: "9464" }\n',
      ),
    ]);
    assert.equal(await bad.done, 2);
    assert.match(
      bad.stderr.text,
      /h.yaml:3:\d+: error: http\.address: use `host:port`, e\.g\. `127\.0\.0\.1:9464`/,
    );
    const good = cli([
      'run',
      file(
        'h2.yaml',
        'input: { memory: { records: [1] } }\noutput: { collect: { id: h2 } }\nhttp: { address: "127.0.0.1:0" }\n',
      ),
    ]);
    assert.equal(await good.done, 0, good.stderr.text);
    assert.match(good.stderr.text, /Serving metrics and the dashboard at http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('fails with exit 2 on an address it cannot use', async () => {
    const r = cli([
      'run',
      file('b.yaml', 'input: { memory: { records: [1] } }\noutput: { collect: { id: b } }\n'),
      '--http',
      'localhost',
    ]);
    assert.equal(await r.done, 2);
    assert.match(r.stderr.text, /bad HTTP address `localhost`: use `host:port`/);
  });
});
