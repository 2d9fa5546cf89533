/** Spec of the `null` sink. */
import { z } from 'zod';
import { defineComponent } from '../../config/registry.ts';
import { nullSink } from './sink.ts';

/** Config of the `null` sink: nothing to set. */
export const nullSinkConfig = z.object({}).strict();

/**
 * The `null` sink spec.
 *
 * @example
 * registry.add(nullSinkSpec);
 */
export const nullSinkSpec = defineComponent({
  name: 'null',
  kind: 'sink',
  stability: 'stable',
  summary: 'Discards every record (counts them); for benchmarks and dry runs.',
  config: nullSinkConfig,
  examples: [{ title: 'Discard the output', yaml: '{}\n' }],
  create: () => nullSink(),
});
