/** Spec of the `generate` source: deterministic synthetic events for demos and benchmarks. */
import { z } from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { defineComponent } from '../../spec/registry.ts';
import { GENERATED_FIELDS, type GeneratedField, generateSource } from './source.ts';

const durationSchema = (doc: string, fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .describe(doc)
    .superRefine((value, ctx) => {
      try {
        parseDuration(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    });

/** Config of the `generate` source. */
export const generateSourceConfig = z
  .object({
    count: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Records to produce, then the input ends. Omitted: unbounded, until the run is stopped.'),
    rate: z
      .number()
      .positive()
      .optional()
      .describe('Records per second. Omitted: as fast as the pipeline takes them.'),
    seed: z
      .number()
      .int()
      .default(1)
      .describe('Seed of the pseudo-random sequence: the same seed gives the same records.'),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1024)
      .describe('Records per batch (with `rate`: at most `rate / 10`).'),
    startTime: z.iso
      .datetime({ offset: true })
      .default('2026-01-01T00:00:00Z')
      .describe('Event time (`ts`) of the first record, ISO-8601.'),
    interval: durationSchema('Event-time step between consecutive records, e.g. `10ms`, `1s`.', '10ms'),
    disorder: durationSchema(
      'Each event time is moved back by a random amount up to this (out-of-order data for watermark demos).',
      '0ms',
    ),
    userCount: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(1000)
      .describe('How many distinct `user` values.'),
    fields: z
      .array(z.enum(GENERATED_FIELDS as [GeneratedField, ...GeneratedField[]]))
      .min(1)
      .optional()
      .describe(
        'Keep only these fields, in this order. Default: id, ts, user, country, event_type, risk, amount.',
      ),
  })
  .strict();

/**
 * The `generate` source spec.
 *
 * @example
 * registry.add(generateSourceSpec);
 */
export const generateSourceSpec = defineComponent({
  name: 'generate',
  kind: 'source',
  stability: 'beta',
  summary:
    'Produces deterministic synthetic events (views, logins, clicks, transfers, purchases, logouts) for demos, tests and benchmarks.',
  description:
    'Each record looks like `{ id, ts, user, country, event_type, risk, amount }`: `ts` is ISO-8601 UTC, `risk` a whole ' +
    'number 0–100, `event_type` one of `view`, `login`, `click`, `transfer`, `purchase`, `logout`, `amount` a decimal ' +
    'string. The same `seed` gives the same records.',
  config: generateSourceConfig,
  examples: [
    { title: 'A million events as fast as possible', yaml: 'count: 1000000\nseed: 42\n' },
    { title: 'A live stream of 100 events per second', yaml: 'rate: 100\n' },
  ],
  create: (config) =>
    generateSource({
      count: config.count,
      rate: config.rate,
      seed: config.seed,
      batchSize: config.batchSize,
      startTime: Date.parse(config.startTime),
      intervalMs: parseDuration(config.interval),
      disorderMs: parseDuration(config.disorder),
      userCount: config.userCount,
      fields: config.fields,
    }),
});
