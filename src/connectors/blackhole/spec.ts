/** Spec of the `blackhole` sink. */
import { z } from 'zod';
import { defineComponent } from '../../spec/registry.ts';
import { blackholeSink } from './sink.ts';

/** Config of the `blackhole` sink: nothing to set. */
export const blackholeSinkConfig = z.object({}).strict();

/**
 * The `blackhole` sink spec.
 *
 * @example
 * registry.add(blackholeSinkSpec);
 */
export const blackholeSinkSpec = defineComponent({
  name: 'blackhole',
  kind: 'sink',
  stability: 'stable',
  summary: 'Discards every record (counts them); for benchmarks and dry runs.',
  config: blackholeSinkConfig,
  examples: [{ title: 'Discard the output', yaml: '{}\n' }],
  create: () => blackholeSink(),
});
