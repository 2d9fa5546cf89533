import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../core/errors.ts';
import { registerSecret } from '../core/secrets.ts';
import { formatJsonLine, parseLogFormat, RunLog } from './logs.ts';

class Capture {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

const REPLACEMENT = '$' + '{DB_PASSWORD}';

describe('formatJsonLine', () => {
  it('writes the fixed fields in order, leaves out what is undefined, and redacts secrets', () => {
    registerSecret('pa55w0rd-xyz', REPLACEMENT);
    const line = formatJsonLine(
      'etl',
      {
        level: 'warn',
        message: 'login with pa55w0rd-xyz refused',
        stage: 'db',
        code: 'SLUICE_CONNECTION',
        context: { url: 'postgres://u:pa55w0rd-xyz@h/db', n: 10n },
      },
      0,
    );
    assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'), 'one line');
    const parsed = JSON.parse(line);
    assert.deepEqual(Object.keys(parsed), [
      'time',
      'level',
      'pipeline',
      'stage',
      'message',
      'code',
      'context',
    ]);
    assert.equal(parsed.time, '1970-01-01T00:00:00.000Z');
    assert.ok(!line.includes('pa55w0rd-xyz'));
    assert.equal(parsed.message, `login with ${REPLACEMENT} refused`);
    assert.equal(parsed.context.n, '10', 'a bigint is written as a string');
    assert.deepEqual(Object.keys(JSON.parse(formatJsonLine('etl', { level: 'info', message: 'hi' }, 0))), [
      'time',
      'level',
      'pipeline',
      'message',
    ]);
  });
});

describe('RunLog', () => {
  it('sends stage warnings with their stage and code as fields, the rest as context', () => {
    const out = new Capture();
    new RunLog(out, 'json', 'p')
      .logger()
      .warn('Reconnecting', { stage: 'src', code: 'SLUICE_X', attempt: 2 });
    const parsed = JSON.parse(out.text);
    assert.equal(parsed.stage, 'src');
    assert.equal(parsed.code, 'SLUICE_X');
    assert.deepEqual(parsed.context, { attempt: 2 });
    assert.equal(parsed.level, 'warn');
  });

  it('writes text as before in the text format', () => {
    const out = new Capture();
    const log = new RunLog(out, 'text', 'p');
    log.logger().warn('Slow', { stage: 's' });
    log.say('info', 'Done');
    log.error(new SluiceError('SLUICE_STAGE', 'boom', { stage: 's' }), {});
    assert.equal(out.text.split('\n')[0], 'WARN Slow {"stage":"s"}');
    assert.equal(out.text.split('\n')[1], 'Done');
    assert.match(out.text, /Error \[SLUICE_STAGE\]: boom/);
  });

  it('parses --log-format', () => {
    assert.equal(parseLogFormat(undefined), 'text');
    assert.equal(parseLogFormat('json'), 'json');
    assert.throws(() => parseLogFormat('JSON'), /unknown log format `JSON`: use `text` or `json`/);
  });
});
