/**
 * The `window` step of pipeline files: keyed event-time windows with aggregates.
 *
 * ```yaml
 * pipeline:
 *   - window:
 *       key: [country, event_type]
 *       time: ts
 *       tumbling: 1m
 *       watermark: { maxOutOfOrder: 5m }
 *       allowedLateness: 1h
 *       aggregate: { count: count(), amount: sum(amount), p99: percentile(risk, 0.99) }
 *       late: late
 * ```
 */
import { z } from 'zod';
import { compileAggregate } from '../aggregate/parse.ts';
import { errorMessage } from '../core/errors.ts';
import { durationField } from '../spec/fields.ts';
import { defineComponent } from '../spec/registry.ts';
import { TIME_FORMATS } from './timestamp.ts';
import { windowOperator } from './window.ts';
import { windowPorts, windowProblems } from './window-options.ts';

const aggregateExpr = z
  .string()
  .min(1)
  .superRefine((text, ctx) => {
    try {
      compileAggregate(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    }
  });

function depth(text: string): number {
  let d = 0;
  for (const c of text) d += c === '(' ? 1 : c === ')' ? -1 : 0;
  return d;
}

/**
 * Undoes YAML's split of a call with several arguments in a flow mapping. In
 * `{ p99: percentile(risk, 0.99) }` the comma ends the plain scalar, so YAML reads
 * `p99: "percentile(risk"` and a key `"0.99)"` with no value. A value with an unclosed `(`
 * can never be a valid call, so re-joining it with the value-less keys that follow until the
 * parentheses balance is unambiguous — and lets pipeline files write aggregates unquoted, as
 * DESIGN.md does.
 */
export function rejoinFlowCalls(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const entries = Object.entries(input as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < entries.length; i++) {
    const [name, value] = entries[i] as [string, unknown];
    if (typeof value !== 'string' || depth(value) <= 0) {
      out[name] = value;
      continue;
    }
    let text = value;
    let d = depth(value);
    while (d > 0 && i + 1 < entries.length) {
      const [next, nextValue] = entries[i + 1] as [string, unknown];
      if (nextValue !== null && nextValue !== undefined) break;
      text += `, ${next}`;
      d += depth(next);
      i++;
    }
    out[name] = text;
  }
  return out;
}

/** `window`: keyed tumbling, sliding or session windows with aggregates, late updates and a `late` output. */
export const windowSpec = defineComponent({
  name: 'window',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Groups records by key into tumbling, sliding or session windows in event time and emits one aggregate record per key and window.',
  description:
    'A result holds the key fields, `windowStart` and `windowEnd` (ISO-8601 UTC), the aggregates by name, `revision` (1, 2, 3 …) and `update` (true when it replaces an earlier result), so a sink can upsert on key + `windowStart`. ' +
    'A stop (Ctrl-C, SIGTERM) before the end of the input is not an end: under checkpoints no window fires (they are in the checkpoint and the next run fires them); without, open windows are emitted with `partial: true` — never as final results. ' +
    'A window fires when the watermark passes its end; for `allowedLateness` more, a late event updates it and an update is emitted; a later event goes to the `late` output (`{event, eventTime, watermark, latenessMs}`), or to the DLQ without one. ' +
    'Aggregates: `count()`, `count(f)`, `sum(f)` (exact decimal), `min(f)`, `max(f)` (decimals compare exactly), `mean(f)` (of decimals: exact, rounded half to even to their scale + 6 digits), `ema(f, halfLife)`, `rollingMean(f, bucket, buckets)`, `distinct(f[, precision])` (HyperLogLog), `percentile(f, q[, relativeAccuracy])` (DDSketch; a decimal is sketched as its nearest double), `hdrPercentile(f, q[, digits])` (HDR histogram). ' +
    'A record with an unreadable time, a missing key field or a value an aggregate cannot take goes to the DLQ.',
  config: z
    .object({
      key: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .optional()
        .describe(
          'Key field, or several; each appears by name in the results. Omit for one window over all records.',
        ),
      time: z
        .string()
        .min(1)
        .optional()
        .describe('Event-time field (ISO-8601 string or epoch number); a dotted path reads a nested field.'),
      timeFormat: z
        .enum(TIME_FORMATS)
        .default('auto')
        .describe(
          'How `time` is written: `auto` (ISO-8601 strings, numbers as epoch ms), `iso8601`, `epochSeconds`, `epochMillis`, `epochMicros`.',
        ),
      processingTime: z
        .boolean()
        .optional()
        .describe('Tumbling windows by the clock instead of `time` ("flush the counts every minute").'),
      tumbling: durationField().optional().describe('Tumbling windows of this length, e.g. `1m`.'),
      sliding: z
        .object({
          size: durationField().describe('Window length, e.g. `10m`.'),
          slide: durationField().describe('How often a window starts, e.g. `1m`; divides `size`.'),
        })
        .strict()
        .optional()
        .describe('Sliding (hopping) windows.'),
      session: z
        .object({ gap: durationField().describe('A session ends this long after its last event.') })
        .strict()
        .optional()
        .describe('Session windows per key; sessions that come to overlap merge.'),
      offset: durationField()
        .optional()
        .describe(
          'Shift of the tumbling/sliding grid from the epoch (e.g. for daily windows in a time zone).',
        ),
      watermark: z
        .object({
          maxOutOfOrder: durationField()
            .prefault('0ms')
            .describe(
              'How far behind the newest event an event may arrive and still be on time; `0ms`: monotonous.',
            ),
          idleTimeout: durationField()
            .optional()
            .describe('A source partition silent this long stops holding the watermark back.'),
        })
        .strict()
        .optional()
        .describe(
          'Watermarks generated from the event times this step sees (per source partition, merged by minimum). Without it, upstream watermarks and the end of input fire windows.',
        ),
      allowedLateness: durationField()
        .optional()
        .describe(
          'How long after it fired a window still takes late events and emits updates. Default `0ms`.',
        ),
      aggregate: z.preprocess(
        rejoinFlowCalls,
        z
          .record(
            z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'an output field name: letters, digits, `_`'),
            aggregateExpr,
          )
          .describe(
            'Output field → aggregate call, e.g. `{ count: count(), amount: sum(amount), p99: percentile(risk, 0.99) }`.',
          ),
      ),
      late: z
        .string()
        .min(1)
        .optional()
        .describe('Side output (an `outputs:` name) for events later than `allowedLateness`.'),
      trigger: z
        .object({
          early: durationField()
            .optional()
            .describe('Also emit results of open windows this often (processing time).'),
          count: z
            .number()
            .int()
            .min(1)
            .optional()
            .describe("Also emit a window's result every this many events."),
        })
        .strict()
        .optional()
        .describe("Firings besides the watermark's."),
      maxKeys: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(
          'The most live windows (one per key and window) this step may hold; past it the run stops with a clear error instead of running out of memory. Default: only the run-wide `maxStateBytes`.',
        ),
      parallelism: z
        .union([z.literal('auto'), z.number().int().min(1).max(256)])
        .optional()
        .describe(
          'Threads to run this step on when it reads a plain CSV or JSON Lines file alone (`auto`: one per core, and one thread for a file under 64 MiB, where a worker does not pay): the file is split into byte ranges at row boundaries as threads become free (a worker only where it can take 16 MiB or more), this thread and worker threads pre-aggregate windows, and the results are exactly those of one thread. Falls back to one thread (and says why) when the input or the step does not allow it. Default 1.',
        ),
    })
    .strict()
    .superRefine((c, ctx) => {
      // The window rules live in one place, shared with the TypeScript API. It runs once every
      // field parsed (aggregate calls may have failed: those are reported at their field already,
      // so a problem at a path that has an issue is not reported twice).
      const reported = new Set(ctx.issues.map((i) => (i.path ?? []).join('.')));
      for (const p of windowProblems(c))
        if (!reported.has(p.path.join('.')))
          ctx.addIssue({ code: 'custom', message: p.message, path: [...p.path] });
    }),
  examples: [
    {
      title: 'Per-minute counts, sums and p99 with late updates',
      yaml: 'key: [country, event_type]\ntime: ts\ntumbling: 1m\nwatermark: { maxOutOfOrder: 5m }\nallowedLateness: 1h\naggregate: { count: count(), amount: sum(amount), p99: percentile(risk, 0.99) }\nlate: late',
    },
    {
      title: 'User sessions',
      yaml: 'key: user\ntime: ts\nsession: { gap: 30m }\nwatermark: { maxOutOfOrder: 1m }\naggregate: { events: count(), users: distinct(device) }',
    },
    {
      title: 'Counts flushed every minute by the clock',
      yaml: 'key: route\nprocessingTime: true\ntumbling: 1m\naggregate: { hits: count() }',
    },
  ],
  ports: (config) => windowPorts(config),
  create: (config) =>
    windowOperator({
      key: config.key,
      time: config.time,
      timeFormat: config.timeFormat,
      processingTime: config.processingTime,
      tumbling: config.tumbling,
      sliding: config.sliding,
      session: config.session,
      offset: config.offset,
      watermark: config.watermark,
      allowedLateness: config.allowedLateness,
      aggregate: config.aggregate,
      late: config.late,
      trigger: config.trigger,
      maxKeys: config.maxKeys,
      parallelism: config.parallelism,
    }),
});
