/**
 * Field helpers every component spec shares, so a duration (or any other common value) is
 * validated in one place with one wording.
 */
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { errorMessage } from '../core/errors.ts';
import { connectionUrlProblem } from '../core/url.ts';

/** Pushes the parse error of a bad duration onto `ctx`; returns the milliseconds or undefined. */
function checkDuration(value: string, ctx: z.RefinementCtx): number | undefined {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err), input: value });
    return undefined;
  }
}

/** A duration string (`500ms`, `10s`, `1m`, `2h`, `1d`), parsed to milliseconds. */
export function durationField(): z.ZodPipe<z.ZodString, z.ZodTransform<number, string>> {
  return z.string().transform((value, ctx) => checkDuration(value, ctx) ?? z.NEVER);
}

/**
 * A duration string validated as {@link durationField} does, but kept as written (for configs
 * that carry the text on, e.g. `checkpoint.interval`).
 */
export function durationText(): z.ZodString {
  return z.string().superRefine((value, ctx) => {
    checkDuration(value, ctx);
  });
}

/**
 * A refinement of connection URL fields (`url: postgres://…`): reports a URL the clients would
 * misread, e.g. a password holding `@` then `/`, `?` or `#` that is not percent-encoded (see
 * `core/url.ts`). The message never quotes the URL. Add it after the field's scheme check.
 *
 * @example
 * const url = z.string().regex(/^redis:\/\//, 'must be a `redis://` URL').superRefine(checkConnectionUrl);
 */
export function checkConnectionUrl(value: string, ctx: z.RefinementCtx): void {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) return; // the scheme check says it
  const problem = connectionUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `the URL ${problem}`, input: value });
}

/**
 * The buffer of an edge: `size` in messages and the `overflow` policy when it is full. A stage's
 * `buffer:` and a `fanOut` branch's use it.
 */
export function bufferField() {
  return z.strictObject({
    size: z.number().int().min(1).optional().describe('Batches the edge queues; default `channelCapacity`.'),
    overflow: z
      .enum(['block', 'dropOldest', 'error'])
      .optional()
      .describe('When full: `block` (backpressure, default), `dropOldest`, or `error`.'),
  });
}
