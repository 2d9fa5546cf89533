// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files spell `${VAR}` literally
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { didYouMean, editDistance } from '../spec/suggest.ts';
import { interpolate, locate, parseSource } from './yaml.ts';

describe('interpolate', () => {
  it('expands variables and defaults; the default also covers an empty variable', () => {
    assert.deepEqual(interpolate('${A}/${B:-b}/${C:-}/${E:-e}', { A: 'a', E: '' }), {
      value: 'a/b//e',
      errors: [],
    });
    assert.deepEqual(
      interpolate('${E}', { E: '' }),
      { value: '', errors: [] },
      'set but empty, no default: empty',
    );
    assert.deepEqual(interpolate('cost: $5, ${X:-a:b-c}', {}), { value: 'cost: $5, a:b-c', errors: [] });
  });

  it('`$${` is a literal `${`', () => {
    assert.deepEqual(interpolate('$${A} and $${A:-x}', { A: 'no' }), {
      value: '${A} and ${A:-x}',
      errors: [],
    });
  });

  it('reports unset variables, bad names and an unterminated reference', () => {
    assert.deepEqual(interpolate('${NOPE}', {}).errors, [
      'environment variable `NOPE` is not set; set it or give a default: `${NOPE:-value}`',
    ]);
    assert.match(interpolate('${1X}', {}).errors[0] ?? '', /`\$\{1X\}` is not a valid variable reference/);
    assert.match(interpolate('${}', {}).errors[0] ?? '', /not a valid variable reference/);
    assert.match(interpolate('a ${B', {}).errors[0] ?? '', /unterminated `\$\{`/);
  });
});

describe('locate', () => {
  const { source } = parseSource('a:\n  b: [1, { c: 2 }]\n  d:\n', 'x.yaml');
  it('points at values, keys, and the nearest key for a missing path', () => {
    assert.deepEqual(locate(source, ['a', 'b', 1, 'c']), { line: 2, column: 15 });
    assert.deepEqual(locate(source, ['a', 'b', 1, 'c'], 'key'), { line: 2, column: 12 });
    assert.deepEqual(locate(source, ['a', 'd', 'e']), { line: 3, column: 3 }, 'a key with no value');
    assert.deepEqual(locate(source, ['a', 'zz']), { line: 1, column: 1 });
    assert.deepEqual(
      locate(source, ['a', 'b', 9]),
      { line: 2, column: 3 },
      'past the end of a list: the key of the list',
    );
  });
});

describe('suggestions', () => {
  it('edit distance counts a swap of neighbours as one', () => {
    assert.equal(editDistance('nmae', 'name'), 1);
    assert.equal(editDistance('FlushMs', 'flushms'), 0);
    assert.equal(editDistance('', 'abc'), 3);
  });

  it('suggests close names only', () => {
    assert.equal(didYouMean('fiel', ['file', 'stdin']), 'file');
    assert.equal(didYouMean('kafka', ['file', 'stdin']), undefined);
    assert.equal(didYouMean('gen', ['file', 'generate']), 'generate', 'a prefix');
    assert.equal(didYouMean('x', []), undefined);
  });
});
