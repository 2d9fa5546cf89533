import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../../pipeline.ts';
import { generateSource } from '../generate/source.ts';
import { blackholeSink } from './sink.ts';
import { blackholeSinkSpec } from './spec.ts';

describe('blackhole sink', () => {
  it('discards and counts records and batches', async () => {
    const sink = blackholeSink();
    const summary = await new Pipeline('t')
      .from(generateSource({ count: 2050, batchSize: 1000 }))
      .to(sink)
      .run().done;
    assert.equal(sink.records, 2050);
    assert.equal(sink.batches, 3);
    assert.equal(summary.recordsWritten, 2050);
  });

  it('has a spec that takes no options', () => {
    assert.deepEqual(blackholeSinkSpec.config.parse({}), {});
    assert.equal(blackholeSinkSpec.config.safeParse({ path: 'x' }).success, false);
    const sink = blackholeSinkSpec.create({}, { baseDir: '/', pipelineName: 'p', stageName: 'out' });
    assert.equal(typeof sink.write, 'function');
  });
});
