/**
 * YAML-configurable specs of the operators that take plain data: `batch` and `throttle`.
 * (map, filter, route… take functions; their YAML forms come with CEL expressions.)
 */
import { z } from 'zod';
import { durationField } from '../spec/fields.ts';
import { defineComponent } from '../spec/registry.ts';
import { batch } from './batch.ts';
import { throttle } from './throttle.ts';

/**
 * `batch`: micro-batching by size and time.
 *
 * @example
 * // pipeline:
 * //   - batch: { size: 500, maxWait: 100ms }
 */
export const batchSpec = defineComponent({
  name: 'batch',
  kind: 'operator',
  stability: 'beta',
  summary: 'Groups records into batches of up to `size`, sending a partial batch after `maxWait`.',
  description:
    'Re-chunks the stream so a sink writes fewer, larger batches. A partial batch leaves `maxWait` after its first record, at the end of input, or before a checkpoint barrier.',
  config: z
    .object({
      size: z.number().int().min(1).default(500).describe('Most records per batch.'),
      maxWait: durationField()
        .prefault('100ms')
        .describe('Longest a record waits for its batch to fill, as a duration (`100ms`, `1s`).'),
    })
    .strict(),
  examples: [
    { title: 'Batches of 1000 records, at most half a second late', yaml: 'size: 1000\nmaxWait: 500ms' },
  ],
  create: (config) => batch({ size: config.size, maxWait: config.maxWait }),
});

/**
 * `throttle`: rate limiting with a token bucket or strict pacing.
 *
 * @example
 * // pipeline:
 * //   - throttle: { rate: 100, burst: 20 }
 */
export const throttleSpec = defineComponent({
  name: 'throttle',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Lets at most `rate` records per second through, with bursts (`bucket`) or evenly spaced (`pace`).',
  description:
    'Waiting is backpressure: upstream slows down, nothing is dropped. In `bucket` mode up to `burst` records pass at once after an idle time; in `pace` mode records are evenly spaced.',
  config: z
    .object({
      rate: z.number().positive().describe('Records per second.'),
      burst: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(
          'Records that may pass at once after an idle time (`bucket` mode). Default: one second’s worth.',
        ),
      mode: z
        .enum(['bucket', 'pace'])
        .default('bucket')
        .describe('`bucket`: token bucket with bursts. `pace`: evenly spaced, no burst.'),
    })
    .strict(),
  examples: [
    { title: '100 records per second, bursts of 20', yaml: 'rate: 100\nburst: 20' },
    { title: 'One record every 200 ms', yaml: 'rate: 5\nmode: pace' },
  ],
  create: (config) => throttle({ rate: config.rate, burst: config.burst, mode: config.mode }),
});

/** Every operator spec of this folder, for the registry. */
export const operatorSpecs = [batchSpec, throttleSpec] as const;
