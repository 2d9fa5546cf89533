/**
 * The `join` step of pipeline files: two entries of `inputs:` joined on a key in event time —
 * an interval join (`between`), a window join (`tumbling`), or a stream–table join (`table`).
 *
 * ```yaml
 * inputs:
 *   orders: { kafka: { topic: orders } }
 *   payments: { kafka: { topic: payments } }
 * pipeline:
 *   - join:
 *       left: orders
 *       right: payments
 *       key: orderId
 *       time: ts
 *       between: [-5m, 1m]
 *       type: left
 *       watermark: { maxOutOfOrder: 10s, idleTimeout: 1m }
 *       late: late
 * ```
 */
import { z } from 'zod';
import { durationField } from '../spec/fields.ts';
import { defineComponent } from '../spec/registry.ts';
import { TIME_FORMATS } from '../time/timestamp.ts';
import { type JoinOptions, joinPorts, streamJoin, tableJoin } from './join.ts';
import { joinProblems } from './options.ts';

const inputName = z.string().min(1);
const keyFields = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
/** A duration that may be negative: `-5m`, `1m`, or milliseconds. */
const signedDuration = z.union([z.number(), z.string().min(1)]);

/** The config of the `join` step, as validated. */
export const joinConfig = z
  .object({
    left: inputName.describe('The `inputs:` entry whose records are the left side (every result has one).'),
    right: inputName
      .optional()
      .describe(
        'The `inputs:` entry joined as a second stream (interval or window join). Give `right` or `table`.',
      ),
    table: inputName
      .optional()
      .describe(
        'The `inputs:` entry read as the changelog of a table (a compacted Kafka topic: last value per key, a null value deletes), joined in event time: each left record gets the row its key had at its time.',
      ),
    key: z
      .union([keyFields, z.object({ left: keyFields, right: keyFields }).strict()])
      .describe(
        'Join key: a field (or several) on both sides, or `{ left, right }`. `$key` is the message key (`meta.key`, the Kafka key). Values compare as text.',
      ),
    time: z
      .union([
        z.string().min(1),
        z.object({ left: z.string().min(1), right: z.string().min(1).optional() }).strict(),
      ])
      .describe(
        'Event-time field of both sides, or `{ left, right }`. A table without `right` uses the message timestamp (`meta.timestamp`).',
      ),
    timeFormat: z
      .enum(TIME_FORMATS)
      .default('auto')
      .describe(
        'How the time fields are written: `auto`, `iso8601`, `epochSeconds`, `epochMillis`, `epochMicros`.',
      ),
    between: z
      .tuple([signedDuration, signedDuration])
      .optional()
      .describe(
        'Interval join: records match when `right.time − left.time` lies in `[lower, upper]`, both inclusive, e.g. `[-5m, 1m]`.',
      ),
    tumbling: durationField()
      .optional()
      .describe('Window join: records match when both fall in the same tumbling window of this length.'),
    type: z
      .enum(['inner', 'left'])
      .default('inner')
      .describe(
        '`inner`: matches only. `left`: also every left record without a match, with `null` on the right — once, when the watermark shows no match can come.',
      ),
    watermark: z
      .object({
        maxOutOfOrder: durationField()
          .prefault('0ms')
          .describe('How far behind the newest event of its side an event may arrive and still be on time.'),
        idleTimeout: durationField()
          .optional()
          .describe(
            'A side that sent nothing this long stops holding the watermark back (it may then send late records).',
          ),
      })
      .strict()
      .optional()
      .describe(
        'Watermarks from each side’s event times (per source partition), merged by minimum; a side holds them back until its first record, its end, or its idle timeout.',
      ),
    late: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Side output (an `outputs:` name) for records that came after the watermark passed them; without it they go to the DLQ. A table’s late changes are applied instead.',
      ),
    as: z
      .object({ left: z.string().min(1).optional(), right: z.string().min(1).optional() })
      .strict()
      .optional()
      .describe('Field names of the two sides in a result; default the input names.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.right === undefined) === (c.table === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['right'],
        message: 'give `right` (a second stream) or `table` (a table’s changelog), exactly one',
      });
    const reported = new Set(ctx.issues.map((i) => (i.path ?? []).join('.')));
    for (const p of joinProblems(options(c), c.table === undefined ? 'stream' : 'table'))
      if (!reported.has(p.path.join('.')))
        ctx.addIssue({ code: 'custom', message: p.message, path: [...p.path] });
  });

type JoinConfig = z.output<typeof joinConfig>;

function options(c: JoinConfig): JoinOptions {
  const right = c.right ?? c.table ?? 'right';
  return {
    key: c.key,
    ...(c.time === undefined ? {} : { time: c.time }),
    timeFormat: c.timeFormat,
    ...(c.between === undefined ? {} : { between: c.between }),
    ...(c.tumbling === undefined ? {} : { tumbling: c.tumbling }),
    type: c.type,
    ...(c.watermark === undefined ? {} : { watermark: c.watermark }),
    ...(c.late === undefined ? {} : { late: c.late }),
    as: { left: c.as?.left ?? c.left, right: c.as?.right ?? (right === c.left ? 'right' : right) },
  };
}

/** `join`: two named inputs joined on a key in event time (interval, window or stream–table join). */
export const joinSpec = defineComponent({
  name: 'join',
  kind: 'operator',
  stability: 'experimental',
  summary:
    'Joins two entries of `inputs:` on a key in event time: an interval join, a window join, or a stream–table join against a changelog.',
  description:
    'The first step of a pipeline with `inputs:`; later steps see its results. A result holds the left record under the left input’s name and the right record (or table row) under the right one’s (`as` renames them); the meta of the left record goes on. ' +
    'Interval (`between`) and window (`tumbling`) joins buffer both sides per key and drop a record once the watermark passes the end of the times it can match; a `type: left` join then emits an unmatched left record once, with `null`. ' +
    'A table join (`table`) keeps the table’s versions per key and joins each left record, once the watermark reaches its time, with the row valid at that time (Flink’s event-time temporal join). ' +
    'The watermark is the minimum of the two sides’. A record at or before it is late: to the `late` output, else to the DLQ — except a table change, which is still applied (waiting records see it). A record without its key or time goes to the DLQ. ' +
    'The buffered records and the table are in checkpoints. See docs/joins.md.',
  config: joinConfig,
  examples: [
    {
      title: 'Payments within 5 minutes before to 1 minute after the order',
      yaml: 'left: orders\nright: payments\nkey: orderId\ntime: ts\nbetween: [-5m, 1m]\ntype: left\nwatermark: { maxOutOfOrder: 10s }\nlate: late',
    },
    {
      title: 'Orders with the customer row valid at the order’s time (a compacted topic)',
      yaml: 'left: orders\ntable: customers\nkey: { left: customerId, right: $key }\ntime: { left: ts }\ntype: left\nwatermark: { maxOutOfOrder: 5s, idleTimeout: 30s }',
    },
  ],
  ports: (config) => joinPorts(config),
  inputs: (config) => [
    { input: 'left', from: config.left },
    { input: 'right', from: (config.right ?? config.table) as string },
  ],
  create: (config) => (config.table === undefined ? streamJoin(options(config)) : tableJoin(options(config))),
});
